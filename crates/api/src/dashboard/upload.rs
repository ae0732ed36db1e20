//! `POST /dashboard/api/import`: Graph CSV exports uploaded from the dashboard (a
//! `multipart/form-data` form with a `tenant` field, an optional `skipBadRows` and one or
//! more `file` parts), imported exactly as `reportroot import` imports files (the storage
//! crate's [`csv_import`]), answered with the lines the CLI prints.
//!
//! Only for a signed-in user who may write the tenant, with the session's CSRF token in
//! `X-CSRF-Token`; the upload is bounded in bytes and files.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, request::Parts, StatusCode};
use axum::response::Response;
use reportroot_model::TenantId;
use reportroot_storage::csv_import::{import_file, FileImport, FileOutcome, ImportSummary};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

/// Most bytes of one upload (all its files and fields).
pub(crate) const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// Most files in one upload.
pub(crate) const MAX_UPLOAD_FILES: usize = 32;

/// Longest file name kept (longer ones are cut).
const MAX_NAME_CHARS: usize = 200;

/// The form, read.
struct Upload {
    tenant: Option<String>,
    skip_bad_rows: bool,
    files: Vec<(String, bytes::Bytes)>,
}

/// Handles the upload.
pub(crate) async fn import(
    state: &Arc<AppState>,
    parts: &Parts,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let Some(user) = crate::session::dashboard_user(state, &parts.headers).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Sign in to the dashboard first.",
        ));
    };
    user.check_csrf(&parts.headers, None)?;
    let boundary = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| ApiError::bad_request("Send the files as multipart/form-data."))?;
    let bytes = match body.take() {
        Some(unread) => crate::body::read(MAX_UPLOAD_BYTES, &parts.headers, unread).await?,
        None => bytes::Bytes::new(),
    };
    let upload = read_form(bytes, boundary).await?;
    let tenant = upload
        .tenant
        .as_deref()
        .and_then(|t| uuid::Uuid::parse_str(t.trim()).ok())
        .map(TenantId)
        .ok_or_else(|| {
            ApiError::bad_request("The form needs a 'tenant' field holding a tenant id.")
        })?;
    if !user.may_write(tenant) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "You may not write to this tenant.",
        ));
    }
    if upload.files.is_empty() {
        return Err(ApiError::bad_request("Choose at least one CSV file."));
    }
    let started = std::time::Instant::now();
    let mut summary = ImportSummary::default();
    let mut files = Vec::new();
    let mut lines = Vec::new();
    for (name, bytes) in upload.files {
        let done = import_file(
            state.storage.as_ref(),
            tenant,
            bytes.to_vec(),
            name.clone(),
            None,
            upload.skip_bad_rows,
            None,
        )
        .await?;
        summary.add(&done);
        lines.extend(done.lines(&name));
        files.push(file_json(&name, &done));
    }
    state.report_cache.invalidate(tenant);
    tracing::info!(
        tenant = %tenant.0,
        files = summary.files,
        rejected = summary.rejected_files,
        user = %user.name,
        "dashboard import"
    );
    let summary_line = summary.line(started.elapsed().as_secs_f64());
    lines.push(summary_line.clone());
    let answer = json!({ "lines": lines, "summary": summary_line, "files": files });
    Ok(crate::entities::json_response(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
    ))
}

/// One file's result, for the page to show.
fn file_json(name: &str, done: &FileImport) -> Value {
    let (outcome, counts) = match &done.outcome {
        FileOutcome::Unreadable => ("unreadable", None),
        FileOutcome::Rejected => ("rejected", None),
        FileOutcome::Imported(counts) => ("imported", Some(counts)),
    };
    json!({
        "name": name,
        "report": done.report.map(|r| r.entity),
        "outcome": outcome,
        "inserted": counts.map(|c| c.inserted),
        "updated": counts.map(|c| c.updated),
        "unchanged": counts.map(|c| c.unchanged),
        "badRows": done.problem_count,
        "problems": done.problems.iter().map(|p| json!({
            "line": p.line, "column": p.column, "message": p.message,
        })).collect::<Vec<_>>(),
    })
}

/// Reads the form's fields and files.
async fn read_form(bytes: bytes::Bytes, boundary: String) -> Result<Upload, ApiError> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut upload = Upload {
        tenant: None,
        skip_bad_rows: false,
        files: Vec::new(),
    };
    let malformed = |error: multer::Error| {
        ApiError::bad_request(format!("The multipart form could not be read: {error}"))
    };
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "tenant" => upload.tenant = Some(field.text().await.map_err(malformed)?),
            "skipBadRows" => {
                let value = field.text().await.map_err(malformed)?;
                upload.skip_bad_rows = matches!(value.trim(), "on" | "true" | "1");
            }
            "file" => {
                if upload.files.len() == MAX_UPLOAD_FILES {
                    return Err(ApiError::bad_request(format!(
                        "At most {MAX_UPLOAD_FILES} files can be uploaded at once."
                    )));
                }
                let file_name = shown_name(field.file_name().unwrap_or("upload.csv"));
                let content = field.bytes().await.map_err(malformed)?;
                upload.files.push((file_name, content));
            }
            _ => {}
        }
    }
    Ok(upload)
}

/// The last path component of a browser-sent file name, bounded: the name tells the importer
/// which report a shared header belongs to, and is shown back.
fn shown_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    if kept.is_empty() {
        "upload.csv".to_owned()
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_folders_and_control_characters() {
        assert_eq!(shown_name("C:\\exports\\a.csv"), "a.csv");
        assert_eq!(shown_name("dir/b\n.csv"), "b.csv");
        assert_eq!(shown_name(""), "upload.csv");
        assert_eq!(shown_name(&"x".repeat(500)).len(), MAX_NAME_CHARS);
    }

    #[tokio::test]
    async fn a_form_yields_its_tenant_flag_and_files() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"tenant\"\r\n\r\nT\r\n\
                    --b\r\nContent-Disposition: form-data; name=\"skipBadRows\"\r\n\r\non\r\n\
                    --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x/one.csv\"\r\n\
                    Content-Type: text/csv\r\n\r\nA,B\r\n1,2\r\n--b--\r\n";
        let form = read_form(bytes::Bytes::from(body), "b".into())
            .await
            .expect("a form");
        assert_eq!(form.tenant.as_deref(), Some("T"));
        assert!(form.skip_bad_rows);
        assert_eq!(form.files.len(), 1);
        assert_eq!(form.files[0].0, "one.csv");
        assert_eq!(&form.files[0].1[..], b"A,B\r\n1,2");
    }
}
