//! Segments and their string criteria, counted against the member table.

use super::*;

pub(super) struct Segment {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) sample_type: String,
    pub(super) created_at: Timestamp,
    pub(super) modified_at: Timestamp,
    pub(super) criteria: Vec<SimCriterion>,
}

pub(super) const STRING_OPERATORS: [&str; 7] = [
    "EQUALS",
    "CONTAINS",
    "DOES_NOT_CONTAINS",
    "BEGINS_WITH",
    "ENDS_WITH",
    "IS_EMPTY",
    "IS_NOT_EMPTY",
];

/// Whether a member's value satisfies a string criterion (case-insensitive unless the operator
/// ends in `_CASE_SENSITIVE`).
pub(super) fn criterion_matches(c: &SimCriterion, member: &BTreeMap<String, String>) -> bool {
    let value = member
        .get(&c.column)
        .map(String::as_str)
        .unwrap_or_default();
    let sensitive = c.operator.ends_with("_CASE_SENSITIVE");
    let norm = |s: &str| {
        if sensitive {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    let value = norm(value);
    match c.operator.trim_end_matches("_CASE_SENSITIVE") {
        "IS_EMPTY" => value.is_empty(),
        "IS_NOT_EMPTY" => !value.is_empty(),
        "DOES_NOT_CONTAINS" => c.values.iter().all(|v| !value.contains(&norm(v))),
        op => c.values.iter().any(|v| {
            let v = norm(v);
            match op {
                "EQUALS" => value == v,
                "CONTAINS" => value.contains(&v),
                "BEGINS_WITH" => value.starts_with(&v),
                "ENDS_WITH" => value.ends_with(&v),
                _ => false,
            }
        }),
    }
}

impl State {
    pub(super) fn segment_body(
        body: &str,
        fields: &str,
    ) -> Result<(String, String, String), Failure> {
        let root = xml::parse(body).map_err(|e| Failure::params(e.to_string(), fields))?;
        if root.name != "segmentation" {
            return Err(Failure::params(
                "a <segmentation> document is required",
                fields,
            ));
        }
        let name = root
            .text_of("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Failure::params("name is required", "name"))?;
        let sample_type = root
            .text_of("sampleType")
            .unwrap_or("ALL")
            .to_ascii_uppercase();
        if !["ALL", "PERCENT", "FIX"].contains(&sample_type.as_str()) {
            return Err(Failure::params(
                "sampleType must be ALL, PERCENT or FIX",
                "sampleType",
            ));
        }
        Ok((
            name.to_owned(),
            root.text_of("description").unwrap_or_default().to_owned(),
            sample_type,
        ))
    }

    pub fn create_segment(&mut self, body: &str, now: Timestamp) -> Answer {
        let (name, description, sample_type) = Self::segment_body(body, "segmentation")?;
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        self.segments.insert(
            id,
            Segment {
                id,
                name,
                description,
                sample_type,
                created_at: now,
                modified_at: now,
                criteria: Vec::new(),
            },
        );
        Ok(xml::result("xs:long", &id.to_string()))
    }

    pub(super) fn segment_mut(&mut self, id: &str) -> Result<&mut Segment, Failure> {
        let id = parse_id(id, "segmentId")?;
        self.segments
            .get_mut(&id)
            .ok_or_else(|| Failure::not_found("segment", "segmentId"))
    }

    pub fn update_segment(&mut self, id: &str, body: &str, now: Timestamp) -> Answer {
        let (name, description, sample_type) = Self::segment_body(body, "segmentation")?;
        let segment = self.segment_mut(id)?;
        segment.name = name;
        segment.description = description;
        segment.sample_type = sample_type;
        segment.modified_at = now;
        Ok(xml::result("xs:boolean", "true"))
    }

    pub fn delete_segment(&mut self, id: &str) -> Answer {
        let id = self.segment_mut(id)?.id;
        self.segments.remove(&id);
        Ok(xml::result("xs:boolean", "true"))
    }

    pub fn get_segment(&self, id: &str) -> Answer {
        let id = parse_id(id, "segmentId")?;
        let segment = self
            .segments
            .get(&id)
            .ok_or_else(|| Failure::not_found("segment", "segmentId"))?;
        let fields = [
            ("dateCreate", self.date(segment.created_at)),
            ("dateModif", self.date(segment.modified_at)),
            ("id", segment.id.to_string()),
            ("name", segment.name.clone()),
            ("sampleRate", "0.0".into()),
            ("sampleType", segment.sample_type.clone()),
        ];
        Ok(xml::success(&xml::object("segmentation", &fields)))
    }

    pub fn list_segments(&self, page: &str, per_page: &str) -> Answer {
        let page = parse_id(page, "page")?.max(1);
        let per_page = parse_limit(per_page)?;
        let skip = usize::try_from(page - 1)
            .unwrap_or(usize::MAX)
            .saturating_mul(per_page);
        let ids: Vec<String> = self
            .segments
            .keys()
            .rev()
            .skip(skip)
            .take(per_page)
            .map(u64::to_string)
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn add_string_criterion(&mut self, id: &str, body: &str, now: Timestamp) -> Answer {
        let root: Node =
            xml::parse(body).map_err(|e| Failure::params(e.to_string(), "criteria"))?;
        if root.name != "stringDemographicCriteria" {
            return Err(Failure::params(
                "a <stringDemographicCriteria> document is required",
                "criteria",
            ));
        }
        let column = root
            .text_of("columnName")
            .filter(|c| self.known_field(c))
            .ok_or_else(|| Failure::params("columnName is not a member field", "columnName"))?;
        let column = self.field_name(column);
        let operator = root
            .text_of("operator")
            .unwrap_or_default()
            .to_ascii_uppercase();
        let base = operator.trim_end_matches("_CASE_SENSITIVE");
        if !STRING_OPERATORS.contains(&base) {
            return Err(Failure::params(
                format!("Unknown operator {operator}"),
                "operator",
            ));
        }
        let values: Vec<String> = root
            .children_named("values")
            .map(|v| v.text.clone())
            .collect();
        if values.is_empty() && !base.ends_with("EMPTY") {
            return Err(Failure::params("values is required", "values"));
        }
        let segment = self.segment_mut(id)?;
        segment.criteria.push(SimCriterion {
            column,
            operator,
            values,
        });
        segment.modified_at = now;
        Ok(xml::result("xs:boolean", "true"))
    }

    /// Members the segment selects now (of those held: members no upload touched carry no
    /// tag, so they only matter to segments without a value criterion).
    fn selects<'a>(
        &'a self,
        segment: &'a Segment,
    ) -> impl Iterator<Item = (&'a String, &'a BTreeMap<String, String>)> + 'a {
        self.members
            .iter()
            .filter(|(_, m)| segment.criteria.iter().all(|c| criterion_matches(c, m)))
    }

    pub(super) fn count_of(&self, segment: &Segment) -> u64 {
        self.selects(segment).count() as u64
    }

    /// Customer ids the segment selects now, sorted.
    pub(super) fn selection(&self, segment: &Segment) -> Vec<String> {
        self.selects(segment).map(|(id, _)| id.clone()).collect()
    }

    pub fn count_segment(&mut self, id: &str, now: Timestamp) -> Answer {
        self.tick(now);
        let id = parse_id(id, "segmentId")?;
        let segment = self
            .segments
            .get(&id)
            .ok_or_else(|| Failure::not_found("segment", "segmentId"))?;
        Ok(xml::result("xs:long", &self.count_of(segment).to_string()))
    }

    pub fn sim_segments(&self) -> Vec<SimSegment> {
        self.segments
            .values()
            .map(|s| SimSegment {
                id: s.id,
                name: s.name.clone(),
                description: s.description.clone(),
                sample_type: s.sample_type.clone(),
                criteria: s.criteria.clone(),
            })
            .collect()
    }

    // ----- campaigns -----
}
