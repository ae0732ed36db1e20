//! Per-version properties: where v1.0 and beta list different columns (in the registry today
//! getOffice365GroupsActivityCounts: 7 on v1.0, 9 on beta), a stored row holds the union and
//! every JSON answer of a version — entity set (GET collection and single, POST and PATCH
//! answers), the beta report function — shows exactly that version's properties in its order,
//! as its `$metadata` entity type declares them. A property only the other version has is
//! unknown on this one: a body naming it is refused (nothing written), and so are `$select`,
//! `$filter` and `$orderby` naming it. Table-driven over every registry entry whose versions
//! differ; reports whose versions agree are covered by tests/family.rs.
#![expect(clippy::unwrap_used)]

use crate::common;

on_both_backends!(each_version_shows_its_own_properties);

use std::fmt;

use common::*;
use reportroot_model::{ReportType, ValueKind, Version, REPORTS};
use reqwest::Method;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Map, Value};

/// JSON with the members of objects in document order.
#[derive(Debug)]
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar,
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Ordered::Object(members))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Ordered {
    /// The member names of an object, without `id` and annotations.
    fn property_names(&self) -> Vec<&str> {
        match self {
            Ordered::Object(members) => members
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| *k != "id" && !k.starts_with('@'))
                .collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn member(&self, name: &str) -> &Ordered {
        match self {
            Ordered::Object(members) => &members.iter().find(|(k, _)| k == name).unwrap().1,
            other => panic!("not an object: {other:?}"),
        }
    }

    fn items(&self) -> &[Ordered] {
        match self {
            Ordered::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }
}

fn ordered(text: &str) -> Ordered {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The reports whose versions show different properties.
fn differing() -> Vec<&'static ReportType> {
    REPORTS
        .iter()
        .filter(
            |r| match (r.json_on(Version::V1), r.json_on(Version::Beta)) {
                (Some(v1), Some(beta)) => v1 != beta,
                _ => false,
            },
        )
        .collect()
}

fn names(report: &ReportType, version: Version) -> Vec<&'static str> {
    report
        .json_on(version)
        .unwrap()
        .iter()
        .map(|&i| report.properties[i].name)
        .collect()
}

/// A valid body of `version`'s properties.
fn body(report: &ReportType, version: Version, day: &str) -> Value {
    let mut body = Map::new();
    for &i in report.json_on(version).unwrap() {
        let property = &report.properties[i];
        let value = match (property.kind, property.name) {
            (ValueKind::Date, "reportRefreshDate") => json!("2025-03-10"),
            (ValueKind::Date, _) => json!(day),
            (ValueKind::Period, _) => json!("7"),
            (ValueKind::Text, _) => json!("All"),
            (ValueKind::Count | ValueKind::Count32, _) => json!(10 + i),
            (ValueKind::Duration, _) => json!("PT1M"),
        };
        body.insert(property.name.to_owned(), value);
    }
    Value::Object(body)
}

/// `<EntityType Name="entity" …>`'s property names in `$metadata` order.
fn metadata_properties(xml: &str, entity: &str) -> Vec<String> {
    let start = xml
        .find(&format!("<EntityType Name=\"{entity}\""))
        .unwrap_or_else(|| panic!("{entity} in $metadata"));
    let end = start + xml[start..].find("</EntityType>").unwrap();
    xml[start..end]
        .split("<Property Name=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

#[test]
fn the_registry_has_reports_whose_versions_differ() {
    let reports = differing();
    assert!(!reports.is_empty());
    for report in reports {
        let v1 = names(report, Version::V1);
        let beta = names(report, Version::Beta);
        // The keys are in both.
        for key in report.natural_key {
            assert!(v1.contains(key) && beta.contains(key), "{}", report.entity);
        }
    }
}

async fn each_version_shows_its_own_properties(backend: Backend) {
    let Some(app) = spawn(backend, |_| {}).await else {
        return;
    };
    for version in Version::ALL {
        let xml = app
            .get(&format!("/{}/$metadata", version.segment()), "")
            .await
            .text()
            .await
            .unwrap();
        for report in REPORTS.iter().filter(|r| r.exists_on(version)) {
            assert_eq!(
                metadata_properties(&xml, report.entity),
                names(report, version),
                "{} $metadata {}",
                version.segment(),
                report.entity
            );
        }
    }
    for report in differing() {
        let t = tenant();
        let set = report.entity;
        let v1 = names(report, Version::V1);
        let beta = names(report, Version::Beta);
        let only_beta: Vec<&str> = beta.iter().copied().filter(|n| !v1.contains(n)).collect();
        let what = |case: &str| format!("{set}: {case}");

        // v1.0 refuses a property only beta has; nothing is written.
        let full = body(report, Version::Beta, "2025-03-09");
        let message = assert_error(
            app.post(&format!("/v1.0/reports/{set}"), &t.write, &full)
                .await,
            400,
            "BadRequest",
        )
        .await;
        assert!(message.contains(only_beta[0]), "{message}");
        assert_eq!(app.count_rows_on(Version::Beta, set, &t.read).await, 0);

        // POST on each version answers that version's properties in its order.
        let on_v1 = app
            .post(
                &format!("/v1.0/reports/{set}"),
                &t.write,
                &body(report, Version::V1, "2025-03-08"),
            )
            .await;
        assert_eq!(on_v1.status(), 201, "{}", what("POST v1.0"));
        let created_v1 = on_v1.text().await.unwrap();
        assert_eq!(
            ordered(&created_v1).property_names(),
            v1,
            "{}",
            what("POST v1.0")
        );
        let v1_id = serde_json::from_str::<Value>(&created_v1).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let on_beta = app
            .post(&format!("/beta/reports/{set}"), &t.write, &full)
            .await;
        assert_eq!(on_beta.status(), 201, "{}", what("POST beta"));
        let created_beta: Value = serde_json::from_str(&on_beta.text().await.unwrap()).unwrap();
        let beta_id = created_beta["id"].as_str().unwrap().to_owned();

        // The row written on v1.0 holds null where only beta has a property.
        let read = app
            .get(&format!("/beta/reports/{set}/{v1_id}"), &t.read)
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(
            ordered(&read).property_names(),
            beta,
            "{}",
            what("GET beta")
        );
        let read: Value = serde_json::from_str(&read).unwrap();
        for name in &only_beta {
            assert_eq!(read[name], Value::Null, "{}", what(name));
        }

        // GET, collection and single, per version.
        for (version, expected) in [(Version::V1, &v1), (Version::Beta, &beta)] {
            let segment = version.segment();
            let list = app
                .get(&format!("/{segment}/reports/{set}"), &t.read)
                .await
                .text()
                .await
                .unwrap();
            let list = ordered(&list);
            let items = list.member("value").items();
            assert_eq!(items.len(), 2);
            for item in items {
                assert_eq!(&item.property_names(), expected, "{}", what(segment));
            }
            let single = app
                .get(&format!("/{segment}/reports/{set}/{beta_id}"), &t.read)
                .await
                .text()
                .await
                .unwrap();
            assert_eq!(
                &ordered(&single).property_names(),
                expected,
                "{}",
                what(segment)
            );
            // $select=* is the version's properties too.
            let star = app
                .get(&format!("/{segment}/reports/{set}?$select=*"), &t.read)
                .await
                .text()
                .await
                .unwrap();
            for item in ordered(&star).member("value").items() {
                assert_eq!(&item.property_names(), expected, "{}", what("$select=*"));
            }
        }

        // Query options naming a property only beta has: 400 on v1.0, fine on beta.
        let name = only_beta[0];
        for query in [
            format!("$select={name}"),
            format!("$filter={name} ge 0"),
            format!("$orderby={name} desc"),
        ] {
            let message = assert_error(
                app.get(&format!("/v1.0/reports/{set}?{query}"), &t.read)
                    .await,
                400,
                "BadRequest",
            )
            .await;
            assert!(
                message.contains(&format!("Could not find a property named '{name}'")),
                "{query}: {message}"
            );
            let response = app
                .get(&format!("/beta/reports/{set}?{query}"), &t.read)
                .await;
            assert_eq!(response.status(), 200, "beta {query}");
        }

        // PATCH on v1.0: a property only beta has is refused and nothing changes; v1.0's own
        // are written and the answer shows v1.0's properties.
        let path = format!("/v1.0/reports/{set}/{beta_id}");
        let members = |pairs: &[(&str, i64)]| {
            Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect(),
            )
        };
        let patch = members(&[(name, 1), (v1[1], 2)]);
        assert_error(
            app.send_json(Method::PATCH, &path, &t.write, &patch).await,
            400,
            "BadRequest",
        )
        .await;
        let unchanged: Value = app
            .get(&format!("/beta/reports/{set}/{beta_id}"), &t.read)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(unchanged, {
            let mut expected = created_beta.clone();
            expected
                .as_object_mut()
                .unwrap()
                .insert("@odata.context".into(), unchanged["@odata.context"].clone());
            expected
        });
        let patched = app
            .send_json(Method::PATCH, &path, &t.write, &members(&[(v1[1], 2)]))
            .await;
        assert_eq!(patched.status(), 200);
        let patched = patched.text().await.unwrap();
        assert_eq!(ordered(&patched).property_names(), v1, "{}", what("PATCH"));

        // The beta report function's JSON: beta's properties in beta's order.
        let args = if report.function.takes_period {
            "(period='D7')"
        } else {
            "()"
        };
        let function = app
            .get(
                &format!(
                    "/beta/reports/{}{args}?$format=application/json",
                    report.function.name
                ),
                &t.read,
            )
            .await
            .text()
            .await
            .unwrap();
        let function = ordered(&function);
        let rows = function.member("value").items();
        assert!(!rows.is_empty());
        for row in rows {
            match report.json_container {
                None => assert_eq!(row.property_names(), beta, "{}", what("function")),
                Some(container) => {
                    for inner in row.member(container).items() {
                        let inner = inner.property_names();
                        assert!(inner.iter().all(|n| beta.contains(n)), "{inner:?}");
                    }
                }
            }
        }
    }
}
