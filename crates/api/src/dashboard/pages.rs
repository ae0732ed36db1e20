//! The HTML of the landing page and of the dashboard's app shell. The shell is the same for
//! every dashboard page: its script reads the path (`/dashboard/`, `/dashboard/reports/{set}`,
//! `/dashboard/operator`, `/dashboard/import`) and the `tenant` query parameter, and draws.
//! Who may see a page is checked here too, before any script runs: no session → the sign-in
//! page; a tenant not granted, or the operator view for a non-operator → 403.

use std::sync::{Arc, OnceLock};

use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reportroot_model::{find_report, TenantId};

use super::assets::{self, version_of};
use crate::error::ApiError;
use crate::AppState;

/// `GET /`: what this server is, with links to the dashboard, the API and `$metadata`.
pub(crate) fn landing(request: &HeaderMap) -> Response {
    static HTML: OnceLock<(String, String)> = OnceLock::new();
    let (html, tag) = HTML.get_or_init(|| {
        let html = format!(
            "{head}<main id=\"main\" class=\"landing\">\n<h1>reportroot</h1>\n\
             <p>Microsoft 365 usage reports with their whole history, through the same API as \
             Microsoft Graph's <code>/reports</code>.</p>\n<ul class=\"links\">\n\
             <li><a href=\"/dashboard/\">Dashboard</a>: every report as charts and tables \
             (sign in first)</li>\n\
             <li><a href=\"/v1.0/reports\">API root</a> (<code>/v1.0/reports</code>, \
             <code>/beta/reports</code>; needs a Bearer token)</li>\n\
             <li><a href=\"/v1.0/$metadata\">$metadata (v1.0)</a> and \
             <a href=\"/beta/$metadata\">$metadata (beta)</a></li>\n</ul>\n</main>\n</body>\n</html>\n",
            head = head("reportroot", false)
        );
        let tag = crate::etag::of_bytes(html.as_bytes());
        (html, tag)
    });
    assets::cached(
        html.as_bytes(),
        "text/html; charset=utf-8",
        tag,
        "no-cache",
        request,
    )
}

/// The `<head>` and the opening of `<body>`; `app` adds the dashboard's scripts.
fn head(title: &str, app: bool) -> String {
    let asset = |name: &str| format!("/dashboard/assets/{name}?v={}", version_of(name));
    let mut head = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"{css}\">\n",
        icon = asset("favicon.svg"),
        css = asset("dashboard.css"),
    );
    if app {
        head.push_str(&format!(
            "<link rel=\"stylesheet\" href=\"{}\">\n",
            asset("uPlot.min.css")
        ));
        for script in ["uPlot.iife.min.js", "charts.js", "pages.js", "app.js"] {
            head.push_str(&format!(
                "<script src=\"{}\" defer></script>\n",
                asset(script)
            ));
        }
    }
    head.push_str("</head>\n<body>\n<a class=\"skip\" href=\"#main\">Skip to content</a>\n");
    head
}

/// The app shell, the same bytes for every page.
fn shell() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| {
        format!(
            "{head}<header class=\"top\"><a class=\"brand\" href=\"/dashboard/\">reportroot</a>\
             <nav id=\"nav\" aria-label=\"Main\"></nav></header>\n\
             <main id=\"main\" tabindex=\"-1\"><p class=\"loading\" role=\"status\">Loading…</p></main>\n\
             </body>\n</html>\n",
            head = head("reportroot dashboard", true)
        )
    })
}

/// A page of the dashboard: the shell for a signed-in user allowed to see it.
pub(crate) async fn app(
    state: &Arc<AppState>,
    parts: &Parts,
    segments: &[&str],
) -> Result<Response, ApiError> {
    let Some(user) = crate::session::dashboard_user(state, &parts.headers).await? else {
        let here = match parts.uri.query() {
            Some(query) => format!("{}?{query}", parts.uri.path()),
            None => parts.uri.path().to_owned(),
        };
        return Ok(crate::session::signin_redirect(&here));
    };
    let tenant = parts.uri.query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "tenant")
            .map(|(_, value)| value.into_owned())
    });
    if let Some(tenant) = tenant {
        let granted = uuid::Uuid::parse_str(&tenant).is_ok_and(|id| user.may_read(TenantId(id)));
        if !granted {
            return Ok(refused(
                StatusCode::FORBIDDEN,
                "You have no access to this tenant.",
            ));
        }
    }
    if segments == ["dashboard", "operator"] && !user.operator {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "The operator view is for operators only.",
        ));
    }
    let status = match segments {
        ["dashboard", "reports", name] if find_report(name).is_none() => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    };
    Ok(html(status, shell().to_owned()))
}

/// A page that says why it cannot be shown, with a link back.
fn refused(status: StatusCode, why: &str) -> Response {
    html(
        status,
        format!(
            "{head}<main id=\"main\" class=\"landing\">\n<h1>Not shown</h1>\n\
             <p class=\"error\" role=\"alert\">{why}</p>\n\
             <p><a href=\"/dashboard/\">Back to the dashboard</a></p>\n</main>\n</body>\n</html>\n",
            head = head("reportroot dashboard", false)
        ),
    )
}

/// An HTML answer no cache keeps (it depends on the session).
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
