//! The drop manifest: `campaigns/<run date>/<campaign id>/manifest.json`.
//!
//! Checked in two layers: the published JSON Schema (`schemas/manifest.v1.schema.json`, the
//! contract the segmentation engine codes against) and then the rules a schema cannot say
//! (the id matches the folder, the time zone exists, shares add up). Every problem is reported,
//! each naming its field as a JSON pointer, so one rejected drop tells the sender everything.

use crate::ids::{AccountId, CampaignId, EspKind};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::OnceLock;

/// The schema, as published in the repository.
pub const SCHEMA_V1: &str = include_str!("../../../schemas/manifest.v1.schema.json");

/// The file name whose arrival starts work.
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: String,
    pub campaign_id: CampaignId,
    pub esp: EspKind,
    #[serde(default)]
    pub account: Option<AccountId>,
    pub template_id: String,
    #[serde(default)]
    pub template_name: Option<String>,
    pub send_at: Timestamp,
    #[serde(default)]
    pub timezone: Option<String>,
    pub audience: AudienceSpec,
    #[serde(default)]
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub control_group: Option<ControlGroup>,
    /// The A/B test's metric (`click_rate` when absent); the schema lists the names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab_metric: Option<String>,
    #[serde(default)]
    pub esp_options: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudienceSpec {
    pub files: Vec<String>,
    pub columns: Columns,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Columns {
    pub customer_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub name: String,
    pub template_id: String,
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlGroup {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub holdout_share: Option<f64>,
}

impl Manifest {
    /// The ESP options object for this manifest's ESP (`null` when absent).
    pub fn esp_options(&self) -> serde_json::Value {
        self.esp_options
            .get(self.esp.as_str())
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Where a drop sits: `campaigns/<run date>/<campaign id>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropPath {
    pub run_date: String,
    pub campaign_id: CampaignId,
    /// The folder, with a trailing slash: `campaigns/<run date>/<campaign id>/`.
    pub prefix: String,
}

impl DropPath {
    /// Parses a manifest key; `None` when the key is not a manifest of the drop layout.
    pub fn parse(key: &str) -> Result<Option<Self>, FieldError> {
        let Some(folder) = key.strip_suffix(MANIFEST_FILE) else {
            return Ok(None);
        };
        let parts: Vec<&str> = folder.trim_end_matches('/').split('/').collect();
        let [root, run_date, campaign] = parts.as_slice() else {
            return Err(FieldError::new(
                "(key)",
                format!("{key}: expected campaigns/<run date>/<campaign id>/manifest.json"),
            ));
        };
        if *root != "campaigns" {
            return Ok(None);
        }
        jiff::civil::Date::strptime("%Y-%m-%d", run_date).map_err(|_| {
            FieldError::new(
                "(key)",
                format!("{key}: run date {run_date:?} is not YYYY-MM-DD"),
            )
        })?;
        let campaign_id = CampaignId::parse(campaign)
            .map_err(|e| FieldError::new("(key)", format!("{key}: {e}")))?;
        Ok(Some(Self {
            run_date: (*run_date).to_owned(),
            prefix: format!("campaigns/{run_date}/{campaign}/"),
            campaign_id,
        }))
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON pointer of the field (`/audience/files/0`), or `(document)` for the whole file.
    pub field: String,
    pub reason: String,
}

impl FieldError {
    /// Both parts cut to a bounded length: a schema message quotes the offending value, which
    /// may be megabytes long.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: crate::text::bounded(&field.into(), 64),
            reason: crate::text::bounded(&reason.into(), 160),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A rejected manifest: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The manifest's key, so the message names the file.
    pub file: String,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first problems: with the file name the message must stay one bounded reason.
        const SHOWN: usize = 2;
        write!(f, "{} rejected: ", self.file)?;
        for (i, e) in self.errors.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        if self.errors.len() > SHOWN {
            write!(f, "; and {} more", self.errors.len() - SHOWN)?;
        }
        Ok(())
    }
}

fn validator() -> Result<&'static jsonschema::Validator, String> {
    static V: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    V.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(SCHEMA_V1).map_err(|e| format!("schema is not JSON: {e}"))?;
        jsonschema::validator_for(&schema).map_err(|e| format!("schema is invalid: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A JSON error without the position serde_json appends (the caller says it once).
fn json_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// A JSON document read only to find a key that appears twice in one object.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "key {:?} appears twice in one object",
                    crate::text::bounded(&key, 64)
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
}

/// Parses and validates a manifest found at `drop`.
pub fn parse(bytes: &[u8], file: &str, drop: &DropPath) -> Result<Manifest, ManifestError> {
    let fail = |errors: Vec<FieldError>| ManifestError {
        file: file.to_owned(),
        errors,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        fail(vec![FieldError::new(
            "(document)",
            format!("not UTF-8 (byte {})", e.valid_up_to()),
        )])
    })?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        fail(vec![FieldError::new(
            "(document)",
            format!(
                "not valid JSON at line {}, column {}: {}",
                e.line(),
                e.column(),
                json_problem(&e)
            ),
        )])
    })?;
    // Parsed into a value, a repeated key keeps its last value silently: refuse it instead.
    if let Err(e) = serde_json::from_str::<NoDuplicateKeys>(text) {
        return Err(fail(vec![FieldError::new(
            "(document)",
            format!(
                "{} (line {}, column {})",
                json_problem(&e),
                e.line(),
                e.column()
            ),
        )]));
    }
    let v = validator().map_err(|e| fail(vec![FieldError::new("(schema)", e)]))?;
    // A bounded number: an array of a million bad items is one problem, said a few times.
    let mut errors: Vec<FieldError> = v
        .iter_errors(&value)
        .take(20)
        .map(|e| {
            let path = e.instance_path().as_str().to_owned();
            FieldError::new(if path.is_empty() { "/" } else { &path }, e.to_string())
        })
        .collect();
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(fail(errors));
    }
    let manifest: Manifest = serde_json::from_value(value)
        .map_err(|e| fail(vec![FieldError::new("(document)", e.to_string())]))?;
    let errors = semantic_checks(&manifest, drop);
    if errors.is_empty() {
        Ok(manifest)
    } else {
        Err(fail(errors))
    }
}

/// Rules the schema cannot express.
fn semantic_checks(m: &Manifest, drop: &DropPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if m.campaign_id != drop.campaign_id {
        errors.push(FieldError::new(
            "/campaign_id",
            format!(
                "{:?} differs from the drop folder's campaign id {:?}",
                m.campaign_id.as_str(),
                drop.campaign_id.as_str()
            ),
        ));
    }
    if let Some(tz) = &m.timezone
        && jiff::tz::TimeZone::get(tz).is_err()
    {
        errors.push(FieldError::new(
            "/timezone",
            format!("{tz:?} is not an IANA time zone"),
        ));
    }
    let c = &m.audience.columns;
    let mut names: Vec<&str> = vec![c.customer_id.as_str()];
    names.extend(c.email.as_deref());
    names.extend(c.fields.iter().map(String::as_str));
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(*n) {
            errors.push(FieldError::new(
                "/audience/columns",
                format!("column {n:?} is named twice"),
            ));
        }
    }
    if !m.variants.is_empty() {
        let total: f64 = m.variants.iter().map(|v| v.share).sum();
        if (total - 1.0).abs() > 1e-6 {
            errors.push(FieldError::new(
                "/variants",
                format!("shares add up to {total}, not 1"),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, v) in m.variants.iter().enumerate() {
            if !names.insert(v.name.as_str()) {
                errors.push(FieldError::new(
                    format!("/variants/{i}/name"),
                    format!("variant name {:?} is used twice", v.name),
                ));
            }
        }
    }
    if let Some(cg) = &m.control_group
        && let Some(f) = &cg.file
        && m.audience.files.contains(f)
    {
        errors.push(FieldError::new(
            "/control_group/file",
            format!("{f:?} is also an audience file"),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop() -> DropPath {
        DropPath::parse("campaigns/2026-11-24/spring-sale/manifest.json")
            .unwrap()
            .unwrap()
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "schema_version": "1",
            "campaign_id": "spring-sale",
            "esp": "emarsys",
            "template_id": "81001",
            "send_at": "2026-11-25T09:30:00+01:00",
            "timezone": "Europe/Berlin",
            "audience": {
                "files": ["audience-000.csv.gz", "audience-001.csv"],
                "columns": {"customer_id": "customer_id", "fields": ["first_name"]}
            }
        })
    }

    fn parse_value(v: &serde_json::Value) -> Result<Manifest, ManifestError> {
        parse(
            v.to_string().as_bytes(),
            "campaigns/2026-11-24/spring-sale/manifest.json",
            &drop(),
        )
    }

    #[test]
    fn a_good_manifest_parses() {
        let m = parse_value(&good()).unwrap();
        assert_eq!(m.esp, EspKind::Emarsys);
        assert_eq!(
            m.send_at,
            "2026-11-25T08:30:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(m.audience.files.len(), 2);
        assert_eq!(m.audience.columns.fields, ["first_name"]);
    }

    #[test]
    fn drop_path_rules() {
        let d = drop();
        assert_eq!(d.run_date, "2026-11-24");
        assert_eq!(d.prefix, "campaigns/2026-11-24/spring-sale/");
        assert_eq!(
            DropPath::parse("campaigns/2026-11-24/x/audience.csv").unwrap(),
            None
        );
        assert_eq!(
            DropPath::parse("other/2026-11-24/x/manifest.json").unwrap(),
            None
        );
        let e = DropPath::parse("campaigns/20261124/x/manifest.json").unwrap_err();
        assert!(e.reason.contains("run date"), "{e}");
        let e = DropPath::parse("campaigns/2026-11-24/a b/manifest.json").unwrap_err();
        assert!(e.reason.contains("campaign id"), "{e}");
    }

    #[test]
    fn every_schema_violation_names_its_field() {
        let mut v = good();
        v["esp"] = "mailchimp".into();
        v["send_at"] = "tomorrow".into();
        v["audience"]["files"][0] = "../etc/passwd".into();
        v.as_object_mut().unwrap().remove("template_id");
        let e = parse_value(&v).unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert!(fields.contains(&"/esp"), "{e}");
        assert!(fields.contains(&"/send_at"), "{e}");
        assert!(fields.contains(&"/audience/files/0"), "{e}");
        assert!(
            e.errors
                .iter()
                .any(|f| f.field == "/" && f.reason.contains("template_id")),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("campaigns/2026-11-24/spring-sale/manifest.json rejected: ")
        );
    }

    #[test]
    fn not_json_names_line_and_column() {
        let e = parse(b"{\n  \"esp\": ,\n}", "m.json", &drop()).unwrap_err();
        assert_eq!(e.errors[0].field, "(document)");
        assert!(e.errors[0].reason.contains("line 2"), "{e}");
    }

    #[test]
    fn semantic_rules() {
        let mut v = good();
        v["campaign_id"] = "other".into();
        v["timezone"] = "Mars/Olympus".into();
        v["audience"]["columns"]["fields"] = serde_json::json!(["customer_id"]);
        v["variants"] = serde_json::json!([
            {"name": "a", "template_id": "1", "share": 0.5},
            {"name": "a", "template_id": "2", "share": 0.4}
        ]);
        let e = parse_value(&v).unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "/campaign_id",
                "/timezone",
                "/audience/columns",
                "/variants",
                "/variants/1/name"
            ],
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = good();
        v["sendAt"] = "2026-11-25T09:30:00Z".into();
        let e = parse_value(&v).unwrap_err();
        assert!(e.to_string().contains("sendAt"), "{e}");
    }

    #[test]
    fn esp_options_are_per_esp_and_only_known_ones() {
        let mut v = good();
        v["esp"] = "silverpop".into();
        v["esp_options"] = serde_json::json!({"silverpop": {"mode": "relational_table"}});
        let m = parse_value(&v).unwrap();
        assert_eq!(
            m.esp_options(),
            serde_json::json!({"mode": "relational_table"})
        );
        for bad in [
            serde_json::json!({"emarsys": {"x": 1}}),
            serde_json::json!({"bronto": {"from_email": "news@brand.example"}}),
            serde_json::json!({"silverpop": {"mode": "segments"}}),
            serde_json::json!({"silverpop": {"mode": "lists", "tag": "x"}}),
        ] {
            v["esp_options"] = bad.clone();
            let e = parse_value(&v).unwrap_err();
            assert!(e.to_string().contains("/esp_options/"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_not_overwritten() {
        let text = r#"{"schema_version": "1", "template_id": "a", "template_id": "b"}"#;
        let drop = DropPath::parse("campaigns/2026-11-24/spring-sale/manifest.json")
            .unwrap()
            .unwrap();
        let e = parse(text.as_bytes(), "m.json", &drop).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.json rejected: (document): key \"template_id\" appears twice in one object (line 1, column 57)"
        );
    }
}
