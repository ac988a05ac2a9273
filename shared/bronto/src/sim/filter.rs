//! Read filters (`filterType` AND|OR over criteria elements), string and date criteria, paging.

use super::soap::ApiFault;
use espbridge_xml::{Element, Node};
use jiff::Timestamp;

/// Objects per read page.
pub(crate) const PAGE_SIZE: usize = 5000;
/// Smallest `pageSize` (reference B.3; below → Fault 115).
const MIN_PAGE_SIZE: usize = 10;

/// How a filter combines its criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combine {
    And,
    Or,
}

/// A read's `filter`: its combination and its criteria elements (everything but `type`).
struct Filter<'a> {
    combine: Combine,
    criteria: Vec<&'a Element>,
}

impl<'a> Filter<'a> {
    /// Reads `filter/type` (default AND; anything else than AND/OR is Fault 112).
    pub fn of(op: &'a Element) -> Result<Self, ApiFault> {
        let Some(filter) = op.child("filter") else {
            return Ok(Self {
                combine: Combine::And,
                criteria: Vec::new(),
            });
        };
        let combine = match filter.child_text("type") {
            None | Some("AND") => Combine::And,
            Some("OR") => Combine::Or,
            Some(_) => {
                return Err(ApiFault::new(
                    112,
                    "Invalid filter type (must be AND or OR).",
                ));
            }
        };
        let criteria = filter
            .children
            .iter()
            .filter(|c| c.name != "type")
            .collect();
        Ok(Self { combine, criteria })
    }

    /// Whether an object passes: `test` answers each criterion (`None` = a criterion this
    /// simulator does not know, ignored). No criteria = everything.
    pub fn accepts(
        &self,
        mut test: impl FnMut(&Element) -> Result<Option<bool>, ApiFault>,
    ) -> Result<bool, ApiFault> {
        let mut known = Vec::with_capacity(self.criteria.len());
        for criterion in &self.criteria {
            if let Some(hit) = test(criterion)? {
                known.push(hit);
            }
        }
        Ok(known.is_empty()
            || match self.combine {
                Combine::And => known.iter().all(|hit| *hit),
                Combine::Or => known.iter().any(|hit| *hit),
            })
    }
}

fn operator(criterion: &Element) -> &str {
    criterion.child_text("operator").unwrap_or("EqualTo")
}

/// A `stringValue{operator, value}` criterion against `actual` (case-sensitive).
pub(crate) fn string_matches(criterion: &Element, actual: &str) -> Result<bool, ApiFault> {
    let value = criterion.child_text("value").unwrap_or("");
    Ok(match operator(criterion) {
        "EqualTo" => actual == value,
        "NotEqualTo" => actual != value,
        "StartsWith" => actual.starts_with(value),
        "DoesNotStartWith" => !actual.starts_with(value),
        "EndsWith" => actual.ends_with(value),
        "DoesNotEndWith" => !actual.ends_with(value),
        "Contains" => actual.contains(value),
        "DoesNotContain" => !actual.contains(value),
        _ => return Err(ApiFault::parameter("string filter operator")),
    })
}

/// A plain-text id criterion (`<id>X</id>`).
pub(crate) fn text_equals(criterion: &Element, actual: &str) -> bool {
    criterion.text == actual
}

/// The `id` (plain text) and `name` (stringValue) criteria most filters share; `None` for
/// any other criterion.
pub(crate) fn id_or_name(
    criterion: &Element,
    id: &str,
    name: &str,
) -> Result<Option<bool>, ApiFault> {
    match criterion.name.as_str() {
        "id" => Ok(Some(text_equals(criterion, id))),
        "name" => string_matches(criterion, name).map(Some),
        _ => Ok(None),
    }
}

/// An `xsd:dateTime` with an explicit offset (none → `None`).
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok()
}

/// A filter value: an `xsd:dateTime` with an offset, or a bare date (midnight UTC).
fn parse_filter_time(text: &str) -> Option<Timestamp> {
    parse_time(text).or_else(|| {
        Some(text)
            .filter(|t| !t.contains('T'))?
            .parse::<jiff::civil::Date>()
            .ok()
            .and_then(|d| {
                jiff::tz::Offset::UTC
                    .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                    .ok()
            })
    })
}

fn utc_day(t: Timestamp) -> jiff::civil::Date {
    jiff::tz::Offset::UTC.to_datetime(t).date()
}

/// A `dateValue{operator, value}` criterion against `actual`; days are UTC days.
pub(crate) fn date_matches(criterion: &Element, actual: Timestamp) -> Result<bool, ApiFault> {
    let value = criterion
        .child_text("value")
        .and_then(parse_filter_time)
        .ok_or_else(|| ApiFault::parameter("date filter value"))?;
    let (day, value_day) = (utc_day(actual), utc_day(value));
    Ok(match operator(criterion) {
        "EqualTo" => actual == value,
        "NotEqualTo" => actual != value,
        "SameDay" => day == value_day,
        "NotSameDay" => day != value_day,
        "SameYear" => day.year() == value_day.year(),
        "NotSameYear" => day.year() != value_day.year(),
        "After" | "GreaterThan" => actual > value,
        "Before" | "LessThan" => actual < value,
        "GreaterThanEqualTo" => actual >= value,
        "LessThanEqualTo" => actual <= value,
        "AfterOrSameDay" => actual > value || day == value_day,
        "BeforeOrSameDay" => actual < value || day == value_day,
        _ => return Err(ApiFault::parameter("date filter operator")),
    })
}

/// `pageNumber` (1 when absent) and `pageSize` (newer WSDLs: 10..=5000, default 5000) → the
/// objects of that page; past the end → none.
fn page<T>(op: &Element, items: Vec<T>) -> Result<Vec<T>, ApiFault> {
    let number = match op.child_text("pageNumber") {
        None => 1,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiFault::parameter("pageNumber"))?,
    };
    let size = match op.child_text("pageSize").map(str::parse::<usize>) {
        None => PAGE_SIZE,
        Some(Ok(size)) if size > PAGE_SIZE => return Err(ApiFault::too_many(PAGE_SIZE)),
        Some(Ok(size)) if size >= MIN_PAGE_SIZE => size,
        Some(_) => return Err(ApiFault::new(115, "Page size is below the minimum.")),
    };
    let skip = (number - 1).saturating_mul(size);
    Ok(items.into_iter().skip(skip).take(size).collect())
}

/// A whole read: the objects the op's `filter` accepts (`test` answers one criterion of one
/// object, `None` for criteria it ignores), that `pageNumber`/`pageSize` select, rendered.
pub(crate) fn read<T>(
    op: &Element,
    objects: impl IntoIterator<Item = T>,
    test: impl Fn(&T, &Element) -> Result<Option<bool>, ApiFault>,
    render: impl Fn(T) -> Node,
) -> Result<Vec<Node>, ApiFault> {
    let filter = Filter::of(op)?;
    let mut found = Vec::new();
    for object in objects {
        if filter.accepts(|criterion| test(&object, criterion))? {
            found.push(object);
        }
    }
    Ok(page(op, found)?.into_iter().map(render).collect())
}

/// A boolean flag such as `includeContent` (absent = false).
pub(crate) fn flag(op: &Element, name: &str) -> bool {
    op.child_text(name).is_some_and(|v| v == "true" || v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        espbridge_xml::parse(xml.as_bytes()).unwrap()
    }

    #[test]
    fn string_operators() {
        let c = el("<name><operator>StartsWith</operator><value>Opt</value></name>");
        assert!(string_matches(&c, "Optimove").unwrap());
        assert!(!string_matches(&c, "Transactional").unwrap());
        let bad = el("<name><operator>Sounds</operator><value>x</value></name>");
        assert_eq!(string_matches(&bad, "x").unwrap_err().code, 106);
    }

    #[test]
    fn same_day_is_the_utc_day_whatever_the_offset() {
        let c = el(
            "<start><operator>SameDay</operator><value>2024-06-15T23:30:00-03:00</value></start>",
        );
        // 02:30Z on the 16th is the same UTC day as 23:30-03:00 on the 15th.
        assert!(date_matches(&c, "2024-06-16T10:00:00Z".parse().unwrap()).unwrap());
        assert!(!date_matches(&c, "2024-06-15T10:00:00Z".parse().unwrap()).unwrap());
    }

    #[test]
    fn or_filters_accept_any_and_filters_need_all() {
        let op = el("<op><filter><type>OR</type><id>a</id><id>b</id></filter></op>");
        let f = Filter::of(&op).unwrap();
        assert!(f.accepts(|c| Ok(Some(text_equals(c, "b")))).unwrap());
        let op = el("<op><filter><id>a</id><id>b</id></filter></op>");
        let f = Filter::of(&op).unwrap();
        assert!(!f.accepts(|c| Ok(Some(text_equals(c, "b")))).unwrap());
        let op = el("<op><filter><type>XOR</type></filter></op>");
        assert_eq!(Filter::of(&op).err().map(|e| e.code), Some(112));
    }
}
