//! Empty counts in JSON: written `null`, accepted as `null` in bodies for counts and durations
//! only.
#![expect(clippy::unwrap_used)]

use reportroot_model::{find_report, Date, Entity, Value};
use reportroot_odata::json::{decode_entity, entity_json, BodyMode, EntityShape};

#[test]
fn null_counts_are_json_null_both_ways() {
    let report = find_report("office365ActivationsUserCounts").unwrap();
    let entity = Entity {
        id: uuid::Uuid::nil(),
        version: 1,
        values: vec![
            Value::Date(Date::parse("2025-01-31").unwrap()),
            Value::Text("PROJECT".into()),
            Value::Null,
            Value::Int(2),
            Value::Null,
        ],
    };
    let json: serde_json::Value =
        serde_json::from_slice(&entity_json(report, &entity, EntityShape::default())).unwrap();
    assert_eq!(json["assigned"], serde_json::Value::Null);
    assert!(json.as_object().unwrap().contains_key("assigned"));
    assert_eq!(json["activated"], 2);

    let body = br#"{"reportRefreshDate":"2025-01-31","productType":"PROJECT","assigned":null,"activated":2,"sharedComputerActivation":null}"#;
    let decoded = decode_entity(report, None, body, BodyMode::Create).unwrap();
    assert_eq!(decoded.values[2], (2, Value::Null));
    let patch = decode_entity(report, None, br#"{"activated":null}"#, BodyMode::Update).unwrap();
    assert_eq!(patch.values, [(3, Value::Null)]);
    // Dates and dimension text stay required.
    for refused in [
        &br#"{"reportRefreshDate":null}"#[..],
        br#"{"productType":null}"#,
    ] {
        assert!(decode_entity(report, None, refused, BodyMode::Update).is_err());
    }
}

/// `Edm.Duration` in JSON is ISO 8601 both ways; the stored value (and the CSV) is Graph's
/// `hh:mm:ss`; Graph's CSV form is refused in a JSON body.
#[test]
fn durations_are_iso_8601_in_json() {
    let report = reportroot_model::report_by_function("getTeamsUserActivityTotalCounts").unwrap();
    let index = report.property_index("audioDuration").unwrap();
    let decoded = decode_entity(
        report,
        None,
        br#"{"audioDuration":"PT1H2M3S","videoDuration":"PT0S","screenShareDuration":"P1DT30M"}"#,
        BodyMode::Update,
    )
    .unwrap();
    let stored: Vec<_> = decoded.values.iter().map(|(_, v)| v.to_string()).collect();
    assert_eq!(stored, ["01:02:03", "00:00:00", "24:30:00"]);
    let mut values: Vec<Value> = vec![Value::Null; report.properties.len()];
    values[index] = Value::Text("123:00:05".into());
    let entity = Entity {
        id: uuid::Uuid::nil(),
        version: 1,
        values,
    };
    let json: serde_json::Value =
        serde_json::from_slice(&entity_json(report, &entity, EntityShape::default())).unwrap();
    assert_eq!(json["audioDuration"], "PT123H5S");
    assert_eq!(json["videoDuration"], serde_json::Value::Null);
    for refused in [
        &br#"{"audioDuration":"01:02:03"}"#[..],
        br#"{"audioDuration":"PT1.5S"}"#,
        br#"{"audioDuration":62}"#,
    ] {
        let error = decode_entity(report, None, refused, BodyMode::Update).unwrap_err();
        assert!(error.to_string().contains("ISO 8601"), "{error}");
    }
}
