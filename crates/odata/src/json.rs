//! Entity JSON: decoding request bodies against the registry, and rendering entities and
//! collections as Graph does.

use std::fmt;

use reportroot_model::{
    duration_from_iso, duration_to_iso, Entity, ReportType, Value, ValueError, ValueKind, Version,
};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use uuid::Uuid;

use crate::json_writer::JsonWriter;

/// What a body is decoded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// POST: every property is required.
    Create,
    /// PATCH: any subset.
    Update,
}

/// Why a request body was refused. Each variant's message is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not parseable JSON.
    #[error("The request body is not valid JSON: {0}.")]
    Syntax(String),
    /// JSON, but not an object.
    #[error("The request body must be a JSON object.")]
    NotObject,
    /// A property the type does not have.
    #[error("The property '{property}' does not exist on type '{entity}'. Make sure to only use property names that are defined by the type.")]
    UnknownProperty {
        /// The offending name.
        property: String,
        /// The qualified type name.
        entity: String,
    },
    /// A property given twice.
    #[error("The property '{0}' is given more than once.")]
    Duplicate(String),
    /// `@odata.type` names another type.
    #[error("The @odata.type '{found}' does not match the expected type '{expected}'.")]
    WrongType {
        /// What the body said.
        found: String,
        /// `#microsoft.graph.<entity>`.
        expected: String,
    },
    /// A value that does not fit its property.
    #[error("Invalid value for property '{property}': {problem}.")]
    InvalidValue {
        /// The property.
        property: String,
        /// What is wrong.
        problem: ValueError,
    },
    /// Required properties missing on create.
    #[error("Missing required properties: {}.", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// An `id` that is not a GUID, or one that differs from the URL's on update.
    #[error("Invalid value for property 'id': {0}.")]
    BadId(&'static str),
    /// An update that changes nothing.
    #[error("The request body contains no properties to update.")]
    Empty,
}

/// A decoded body: the optional client id and the given values by property index.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBody {
    /// The `id` the client supplied, if any.
    pub id: Option<Uuid>,
    /// `(property index, value)` pairs, in registry order.
    pub values: Vec<(usize, Value)>,
}

/// Annotations a client may send back unchanged from a read; they are ignored.
const IGNORED_ANNOTATIONS: &[&str] = &["@odata.context", "@odata.etag", "@odata.id"];

/// Decodes a request body for `report` on `version`, checking every rule of the registry.
///
/// A property another version has but `version` lacks (e.g. `teamsChannelMessages` of
/// getOffice365GroupsActivityCounts on v1.0) is unknown there, as on Graph, where each
/// version's type is its own: the body is refused and nothing is written. On create, such
/// properties are stored null (they are always nullable counts). `None` decodes against every
/// stored property.
pub fn decode_entity(
    report: &ReportType,
    version: Option<Version>,
    body: &[u8],
    mode: BodyMode,
) -> Result<DecodedBody, BodyError> {
    let members = parse_object(body)?;
    let mut seen = vec![false; report.properties.len()];
    let mut decoded = DecodedBody {
        id: None,
        values: Vec::with_capacity(report.properties.len()),
    };
    let mut seen_names: Vec<&str> = Vec::with_capacity(members.len());
    for (name, value) in &members {
        if seen_names.contains(&name.as_str()) {
            return Err(BodyError::Duplicate(name.clone()));
        }
        seen_names.push(name);
        if name == "@odata.type" {
            check_odata_type(report, value)?;
            continue;
        }
        if IGNORED_ANNOTATIONS.contains(&name.as_str()) {
            continue;
        }
        if name == "id" {
            let id = value
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or(BodyError::BadId("must be a GUID string"))?;
            decoded.id = Some(id);
            continue;
        }
        let index = report
            .property_index(name)
            .filter(|&i| report.has_on(version, i))
            .ok_or_else(|| BodyError::UnknownProperty {
                property: name.clone(),
                entity: report.qualified_name(),
            })?;
        let property = &report.properties[index];
        let value =
            decode_value(property.kind, value).map_err(|problem| BodyError::InvalidValue {
                property: property.name.to_owned(),
                problem,
            })?;
        seen[index] = true;
        decoded.values.push((index, value));
    }
    match mode {
        BodyMode::Create => {
            let missing: Vec<_> = report
                .properties
                .iter()
                .zip(&seen)
                .enumerate()
                .filter(|(i, (_, seen))| !**seen && report.has_on(version, *i))
                .map(|(_, (p, _))| p.name)
                .collect();
            if !missing.is_empty() {
                return Err(BodyError::Missing(missing));
            }
            // The properties `version` does not show are stored null.
            for (index, _) in seen.iter().enumerate().filter(|(_, seen)| !**seen) {
                decoded.values.push((index, Value::Null));
            }
        }
        BodyMode::Update => {
            if decoded.values.is_empty() && decoded.id.is_none() {
                return Err(BodyError::Empty);
            }
        }
    }
    decoded.values.sort_by_key(|(index, _)| *index);
    Ok(decoded)
}

fn check_odata_type(report: &ReportType, value: &serde_json::Value) -> Result<(), BodyError> {
    let expected = report.odata_type();
    let found = value.as_str().unwrap_or_default();
    let matches =
        found.eq_ignore_ascii_case(&expected) || found.eq_ignore_ascii_case(&expected[1..]);
    if matches {
        Ok(())
    } else {
        Err(BodyError::WrongType {
            found: value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned),
            expected,
        })
    }
}

/// Decodes one JSON value for a property of the given kind. `null` is accepted for counts and
/// durations (nullable in `$metadata`, as Graph's own JSON carries them) and refused for the
/// required dates, periods and text. A duration is OData JSON's `Edm.Duration`, ISO 8601
/// (`"PT1H2M3S"`), stored as Graph's CSV writes it (`01:02:03`).
///
/// Durations: the catalog gives `Edm.Duration` for the Teams user-activity durations (its
/// EDM type is inferred, no entity type of Graph's defines them) and Graph's doc examples
/// show them as an unquoted `00:00:00`, which is not JSON at all (catalog §6: not copied).
/// OData JSON writes `Edm.Duration` as ISO 8601, so reportroot's JSON does; its CSV keeps
/// Graph's `hh:mm:ss` byte for byte.
pub fn decode_value(kind: ValueKind, value: &serde_json::Value) -> Result<Value, ValueError> {
    match (kind, value) {
        (kind, serde_json::Value::Null) if kind.is_nullable() => Ok(Value::Null),
        (ValueKind::Count, serde_json::Value::Number(n)) => match n.as_i64() {
            Some(i) => kind.check_int(i),
            None => Err(ValueError::NotCount),
        },
        (ValueKind::Count, _) => Err(ValueError::NotCount),
        (ValueKind::Count32, serde_json::Value::Number(n)) => match n.as_i64() {
            Some(i) => kind.check_int(i),
            None => Err(ValueError::NotCount32),
        },
        (ValueKind::Count32, _) => Err(ValueError::NotCount32),
        (ValueKind::Duration, serde_json::Value::String(s)) => duration_from_iso(s)
            .map(Value::Text)
            .ok_or(ValueError::NotIsoDuration),
        (_, serde_json::Value::String(s)) => kind.parse_text(s),
        (ValueKind::Date, _) => Err(ValueError::NotDate),
        (ValueKind::Period, _) => Err(ValueError::NotPeriod),
        (ValueKind::Text, _) => Err(ValueError::WrongType("Edm.String")),
        (ValueKind::Duration, _) => Err(ValueError::NotIsoDuration),
    }
}

/// A JSON object's members in order, duplicates kept so that they can be refused.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_any(MembersVisitor)
    }
}

fn parse_object(body: &[u8]) -> Result<Vec<(String, serde_json::Value)>, BodyError> {
    match serde_json::from_slice::<Members>(body) {
        Ok(members) => Ok(members.0),
        Err(error) if error.is_data() => {
            // Well-formed JSON that is not an object: tell the client exactly that.
            match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(_) => Err(BodyError::NotObject),
                Err(error) => Err(BodyError::Syntax(error.to_string())),
            }
        }
        Err(error) => Err(BodyError::Syntax(error.to_string())),
    }
}

/// What to write around an entity's properties.
#[derive(Debug, Clone, Copy, Default)]
pub struct EntityShape<'a> {
    /// `@odata.context`, for a single entity answer.
    pub context: Option<&'a str>,
    /// Write `@odata.type`.
    pub with_type: bool,
    /// Write `@odata.etag` and `id` (entity-set answers); report functions omit both.
    pub with_identity: bool,
    /// Only these properties (`None` = all); index [`usize::MAX`] stands for `id`.
    pub select: Option<&'a [usize]>,
    /// The API version whose properties are written, in its order
    /// ([`ReportType::json_on`]); `None`: every stored property in registry order.
    pub version: Option<Version>,
}

/// Index standing for the `id` property in a selection.
pub const ID_INDEX: usize = usize::MAX;

/// An entity with its shape, ready to serialize.
pub struct EntityJson<'a> {
    /// The report type.
    pub report: &'a ReportType,
    /// The entity.
    pub entity: &'a Entity,
    /// What to write around it.
    pub shape: EntityShape<'a>,
}

impl EntityJson<'_> {
    /// Writes the entity as a JSON object: its annotations, then its properties in the
    /// version's order.
    fn write(&self, json: &mut JsonWriter<'_>) {
        let shape = &self.shape;
        let mut first = true;
        // Every key here is an annotation or a registry name: plain ASCII.
        let mut key = |json: &mut JsonWriter<'_>, name: &'static str| {
            json.raw(if first { b"{" } else { b"," });
            first = false;
            json.name(name);
        };
        if let Some(context) = shape.context {
            key(json, "@odata.context");
            json.string(context);
        }
        if shape.with_type {
            key(json, "@odata.type");
            json.string(&self.report.odata_type());
        }
        let selected = |index: usize| shape.select.is_none_or(|s| s.contains(&index));
        if shape.with_identity {
            key(json, "@odata.etag");
            json.etag(self.entity.version);
            if selected(ID_INDEX) {
                key(json, "id");
                json.uuid(self.entity.id);
            }
        }
        self.report.for_each_json_on(shape.version, |index| {
            if !selected(index) {
                return;
            }
            let (Some(property), Some(value)) = (
                self.report.properties.get(index),
                self.entity.values.get(index),
            ) else {
                return;
            };
            key(json, property.name);
            match value {
                Value::Null => json.null(),
                Value::Int(i) => json.int(*i),
                // Stored as Graph's CSV writes it; JSON's form is ISO 8601.
                Value::Text(s) if property.kind == ValueKind::Duration => {
                    json.string(duration_to_iso(s).as_deref().unwrap_or(s))
                }
                Value::Text(s) => json.string(s),
                Value::Date(d) => json.date(*d),
            }
        });
        json.raw(if first { b"{}" } else { b"}" });
    }
}

/// Writes `[e1,e2,…]`.
fn write_array<T>(
    json: &mut JsonWriter<'_>,
    items: &[T],
    mut each: impl FnMut(&mut JsonWriter<'_>, &T),
) {
    json.raw(b"[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            json.raw(b",");
        }
        each(json, item);
    }
    json.raw(b"]");
}

/// The annotations of a collection answer besides `value`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CollectionMeta<'a> {
    /// `@odata.context`.
    pub context: &'a str,
    /// `@odata.count`, when `$count=true`.
    pub count: Option<u64>,
    /// `@odata.nextLink`, when there are more pages.
    pub next_link: Option<&'a str>,
}

/// Renders the nested shape Graph's newer beta reports answer with (M365 Apps, browser, Forms,
/// TeamsTeam…): `{"value": [{"reportRefreshDate", "reportPeriod": 7, "<container>": [{…}]}]}`,
/// one outer item per refresh date and period of `rows` (in their order), each inner item the
/// row's other properties of `version` in that version's order. `reportPeriod` is a number here, as in Graph's
/// examples (the flat reports give the string `"7"`); there is no `@odata.context`, as the
/// reports' types left Graph's beta metadata. `@odata.nextLink` follows `value` when given.
pub fn nested_collection_json(
    report: &ReportType,
    version: Option<Version>,
    rows: &[Entity],
    container: &str,
    next_link: Option<&str>,
) -> Vec<u8> {
    let refresh = report.refresh_date_index();
    let period = report.period_index();
    let inner: Vec<usize> = report
        .json_indexes_on(version)
        .into_iter()
        .filter(|i| *i != refresh && Some(*i) != period)
        .collect();
    let mut groups: Vec<&[Entity]> = Vec::new();
    let mut start = 0;
    let key = |row: &Entity| {
        (
            row.values[refresh].clone(),
            period.map(|p| row.values[p].clone()),
        )
    };
    for end in 1..=rows.len() {
        if end == rows.len() || key(&rows[end]) != key(&rows[start]) {
            groups.push(&rows[start..end]);
            start = end;
        }
    }
    let mut out = Vec::with_capacity(128 + rows.len() * 256);
    let json = &mut JsonWriter::new(&mut out);
    json.raw(b"{");
    json.key("value");
    write_array(json, &groups, |json, rows| {
        let first = &rows[0];
        json.raw(b"{");
        json.key(report.properties[refresh].name);
        json.string(&first.values[refresh].to_string());
        if let Some(p) = period {
            json.raw(b",");
            json.key(report.properties[p].name);
            let days = first.values[p].to_string();
            match days.parse::<u32>() {
                Ok(n) => json.uint(u64::from(n)),
                Err(_) => json.string(&days),
            }
        }
        json.raw(b",");
        json.key(container);
        write_array(json, rows, |json, entity| {
            EntityJson {
                report,
                entity,
                shape: EntityShape {
                    select: Some(&inner),
                    version,
                    ..EntityShape::default()
                },
            }
            .write(json);
        });
        json.raw(b"}");
    });
    if let Some(next) = next_link {
        json.raw(b",");
        json.key("@odata.nextLink");
        json.string(next);
    }
    json.raw(b"}");
    out
}

/// Renders `{"@odata.context": ..., "value": [...]}`.
pub fn collection_json(
    report: &ReportType,
    rows: &[Entity],
    meta: CollectionMeta<'_>,
    item_shape: EntityShape<'_>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + rows.len() * 256);
    let json = &mut JsonWriter::new(&mut out);
    json.raw(b"{");
    json.key("@odata.context");
    json.string(meta.context);
    if let Some(count) = meta.count {
        json.raw(b",");
        json.key("@odata.count");
        json.uint(count);
    }
    json.raw(b",");
    json.key("value");
    write_array(json, rows, |json, entity| {
        EntityJson {
            report,
            entity,
            shape: item_shape,
        }
        .write(json);
    });
    if let Some(next) = meta.next_link {
        json.raw(b",");
        json.key("@odata.nextLink");
        json.string(next);
    }
    json.raw(b"}");
    out
}

/// Renders one entity.
pub fn entity_json(report: &ReportType, entity: &Entity, shape: EntityShape<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    EntityJson {
        report,
        entity,
        shape,
    }
    .write(&mut JsonWriter::new(&mut out));
    out
}

#[cfg(test)]
mod tests {
    use reportroot_model::{find_report, Date};

    use super::*;

    fn activations() -> &'static ReportType {
        find_report("office365ActivationsUserCounts").expect("report")
    }

    const VALID: &str = r##"{"@odata.type":"#microsoft.graph.office365ActivationsUserCounts","reportRefreshDate":"2025-01-31","productType":"VISIO CLIENT","assigned":8,"activated":9,"sharedComputerActivation":0}"##;

    #[test]
    fn decodes_a_valid_create_body() {
        let body =
            decode_entity(activations(), None, VALID.as_bytes(), BodyMode::Create).expect("ok");
        assert_eq!(body.values.len(), 5);
        assert_eq!(
            body.values[0].1,
            Value::Date(Date::parse("2025-01-31").expect("date"))
        );
    }

    #[test]
    fn refuses_each_kind_of_bad_body() {
        let report = activations();
        type Check = fn(&BodyError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("{", |e| matches!(e, BodyError::Syntax(_))),
            ("[1]", |e| matches!(e, BodyError::NotObject)),
            ("\"x\"", |e| matches!(e, BodyError::NotObject)),
            (r#"{"nope":1}"#, |e| {
                matches!(e, BodyError::UnknownProperty { .. })
            }),
            (r#"{"assigned":1,"assigned":2}"#, |e| {
                matches!(e, BodyError::Duplicate(_))
            }),
            (r#"{"assigned":"Integer"}"#, |e| {
                matches!(e, BodyError::InvalidValue { .. })
            }),
            (r#"{"assigned":8.5}"#, |e| {
                matches!(e, BodyError::InvalidValue { .. })
            }),
            (r#"{"assigned":-1}"#, |e| {
                matches!(e, BodyError::InvalidValue { .. })
            }),
            (r#"{"assigned":9223372036854775808}"#, |e| {
                matches!(e, BodyError::InvalidValue { .. })
            }),
            (r#"{"reportRefreshDate":"Date"}"#, |e| {
                matches!(e, BodyError::InvalidValue { .. })
            }),
            (r#"{"productType":null}"#, |e| {
                matches!(e, BodyError::InvalidValue { .. })
            }),
            (r##"{"@odata.type":"#microsoft.graph.user"}"##, |e| {
                matches!(e, BodyError::WrongType { .. })
            }),
            (r#"{"id":"nope"}"#, |e| matches!(e, BodyError::BadId(_))),
            ("{}", |e| matches!(e, BodyError::Empty)),
        ];
        for (body, is_expected) in cases {
            let error =
                decode_entity(report, None, body.as_bytes(), BodyMode::Update).expect_err(body);
            assert!(is_expected(&error), "{body}: {error:?}");
        }
        let missing = decode_entity(report, None, br#"{"assigned":1}"#, BodyMode::Create)
            .expect_err("missing");
        assert_eq!(
            missing.to_string(),
            "Missing required properties: reportRefreshDate, productType, activated, sharedComputerActivation."
        );
    }

    #[test]
    fn renders_entities_in_registry_order() {
        let report = activations();
        let body = decode_entity(report, None, VALID.as_bytes(), BodyMode::Create).expect("ok");
        let entity = Entity {
            id: Uuid::nil(),
            version: 2,
            values: body.values.into_iter().map(|(_, v)| v).collect(),
        };
        let json = entity_json(
            report,
            &entity,
            EntityShape {
                with_type: true,
                with_identity: true,
                ..EntityShape::default()
            },
        );
        assert_eq!(
            String::from_utf8(json).expect("utf8"),
            r##"{"@odata.type":"#microsoft.graph.office365ActivationsUserCounts","@odata.etag":"W/\"2\"","id":"00000000-0000-0000-0000-000000000000","reportRefreshDate":"2025-01-31","productType":"VISIO CLIENT","assigned":8,"activated":9,"sharedComputerActivation":0}"##
        );
    }

    #[test]
    fn renders_the_nested_shape_one_item_per_refresh_date_and_period() {
        let report = find_report("browserDistributionUserCounts").expect("report");
        let date = |d: &str| Value::Date(Date::parse(d).expect("date"));
        let row = |refresh: &str, period: &str, counts: [Option<i64>; 3]| Entity {
            id: Uuid::nil(),
            version: 1,
            values: [date(refresh), Value::Text(period.to_owned())]
                .into_iter()
                .chain(counts.map(|c| c.map_or(Value::Null, Value::Int)))
                .collect(),
        };
        let rows = [
            row("2026-01-02", "7", [Some(5), None, Some(3)]),
            row("2026-01-02", "7", [Some(6), Some(1), Some(2)]),
            row("2026-01-03", "30", [Some(1), Some(2), Some(3)]),
        ];
        let json = nested_collection_json(
            report,
            Some(Version::Beta),
            &rows,
            "userCounts",
            Some("https://x/?a=\"b\""),
        );
        assert_eq!(
            String::from_utf8(json).expect("utf8"),
            r#"{"value":[{"reportRefreshDate":"2026-01-02","reportPeriod":7,"userCounts":[{"edge":5,"edgeLegacy":null,"ie":3},{"edge":6,"edgeLegacy":1,"ie":2}]},{"reportRefreshDate":"2026-01-03","reportPeriod":30,"userCounts":[{"edge":1,"edgeLegacy":2,"ie":3}]}],"@odata.nextLink":"https://x/?a=\"b\""}"#
        );
        let empty = nested_collection_json(report, Some(Version::Beta), &[], "userCounts", None);
        assert_eq!(empty, br#"{"value":[]}"#);
    }

    #[test]
    fn renders_a_collection_with_its_annotations_and_escaped_text() {
        let report = activations();
        let entity = Entity {
            id: Uuid::nil(),
            version: 3,
            values: vec![
                Value::Date(Date::parse("2025-01-31").expect("date")),
                Value::Text("VISIO \"CLIENT\"\n".to_owned()),
                Value::Int(-1),
                Value::Null,
                Value::Int(0),
            ],
        };
        let json = collection_json(
            report,
            &[entity.clone(), entity],
            CollectionMeta {
                context: "https://h/v1.0/$metadata#x",
                count: Some(2),
                next_link: Some("https://h/next?$skiptoken=a"),
            },
            EntityShape {
                with_identity: true,
                select: Some(&[ID_INDEX, 1, 2]),
                ..EntityShape::default()
            },
        );
        let item = r#"{"@odata.etag":"W/\"3\"","id":"00000000-0000-0000-0000-000000000000","productType":"VISIO \"CLIENT\"\n","assigned":-1}"#;
        assert_eq!(
            String::from_utf8(json).expect("utf8"),
            format!(
                r#"{{"@odata.context":"https://h/v1.0/$metadata#x","@odata.count":2,"value":[{item},{item}],"@odata.nextLink":"https://h/next?$skiptoken=a"}}"#
            )
        );
    }
}
