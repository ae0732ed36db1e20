//! `reportroot sync`: pulls every report of the endpoint's version (every period) from a Graph endpoint — Microsoft
//! Graph itself or another reportroot — and upserts them, so that run daily it keeps every
//! refresh date forever. Each report is parsed whole before anything of it is written.

use anyhow::{anyhow, bail, Context, Result};
use std::io::Write;
use std::time::{Duration, Instant};

use crate::errors::one_line;
use reportroot_model::{Period, ReportType, TenantId, Version, REPORTS};
use reportroot_odata::csv_format::read_csv_of;
use reportroot_storage::{Storage, UpsertCounts};
use reqwest::header::{AUTHORIZATION, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;

/// Where to pull from and how to authenticate.
pub struct SyncSource {
    /// Base URL with version, e.g. `https://graph.microsoft.com/v1.0`.
    pub base: String,
    /// A bearer token, or `None` to get one with client credentials.
    pub token: Option<String>,
    /// Entra ID application (client) id.
    pub client_id: Option<String>,
    /// Entra ID client secret.
    pub client_secret: Option<String>,
    /// The token endpoint [default: Entra ID's for the tenant].
    pub token_url: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts per request before giving up on 429/503/network errors.
    pub attempts: u32,
    /// Only these reports (those of the endpoint's version); empty: every one.
    pub reports: Vec<&'static ReportType>,
    /// Most calls of one report API per window: see [`Pacer`].
    pub pace: (usize, Duration),
}

/// Graph's limit on CSV report requests: 14 per 10 minutes per app and tenant, for each report
/// API separately (catalog: throttling). `sync` stays at it, so that a sync run again soon
/// after waits instead of meeting 429s.
pub const GRAPH_REPORT_PACE: (usize, Duration) = (14, Duration::from_secs(600));

/// Keeps the calls of each report API under a sliding-window limit, waiting when needed.
pub struct Pacer {
    limit: usize,
    window: Duration,
    calls: std::collections::HashMap<&'static str, std::collections::VecDeque<Instant>>,
}

impl Pacer {
    /// At most `limit` calls of one API per `window`.
    pub fn new((limit, window): (usize, Duration)) -> Self {
        Pacer {
            limit: limit.max(1),
            window,
            calls: std::collections::HashMap::new(),
        }
    }

    /// Waits until `api` may be called again, and counts the call.
    pub async fn ready(&mut self, api: &'static str) {
        let calls = self.calls.entry(api).or_default();
        let now = Instant::now();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            calls.pop_front();
        }
        if calls.len() >= self.limit {
            if let Some(oldest) = calls.pop_front() {
                let wait = self.window.saturating_sub(now.duration_since(oldest));
                out(&format!(
                    "pacing: {api} was called {} times in {} s; waiting {} s (Graph's report limit)",
                    self.limit,
                    self.window.as_secs(),
                    wait.as_secs()
                ));
                tokio::time::sleep(wait).await;
            }
        }
        calls.push_back(Instant::now());
    }
}

fn out(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

async fn client_credentials_token(
    client: &reqwest::Client,
    tenant: TenantId,
    source: &SyncSource,
) -> Result<String> {
    let (Some(id), Some(secret)) = (&source.client_id, &source.client_secret) else {
        bail!("give --token, or --client-id and --client-secret");
    };
    let url = source
        .token_url
        .clone()
        .unwrap_or_else(|| format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"));
    let response = client
        .post(&url)
        .form(&[
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .with_context(|| format!("token request to {url} failed"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("token answer from {url} is not JSON"))?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no access_token from {url} ({status}): {body}"))
}

/// GET with retries on 429/503 (honouring `Retry-After`) and on network errors.
async fn get_with_retries(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    attempts: u32,
) -> Result<reqwest::Response> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let wait = match request.send().await {
            Ok(response)
                if response.status() == StatusCode::TOO_MANY_REQUESTS
                    || response.status() == StatusCode::SERVICE_UNAVAILABLE =>
            {
                let seconds = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1u64 << attempt.min(5));
                if attempt >= attempts {
                    return Err(anyhow!(
                        "{url}: still {} after {attempt} attempts",
                        response.status()
                    ));
                }
                out(&format!(
                    "{url}: {}, retrying in {seconds} s",
                    response.status()
                ));
                Duration::from_secs(seconds.min(120))
            }
            Ok(response) => return Ok(response),
            Err(error) => {
                if attempt >= attempts {
                    return Err(anyhow!(error).context(url.to_owned()));
                }
                out(&format!("{url}: {}, retrying", one_line(&error)));
                Duration::from_secs(1u64 << attempt.min(5))
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Downloads one report's CSV, following the `302` without the token.
async fn fetch_csv(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    attempts: u32,
) -> Result<Vec<u8>> {
    let mut response = get_with_retries(client, url, Some(token), attempts).await?;
    if response.status().is_redirection() {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .with_context(|| format!("{url}: redirect without Location"))?
            .to_owned();
        // The download URL is pre-authenticated: the token is not sent to it.
        response = get_with_retries(client, &location, None, attempts).await?;
    }
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(anyhow!("{url}: {status}: {body}"));
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .with_context(|| url.to_string())
}

fn function_url(base: &str, report: &ReportType, period: Option<Period>) -> String {
    match period {
        Some(period) => format!("{base}/reports/{}(period='{period}')", report.function.name),
        None => format!("{base}/reports/{}()", report.function.name),
    }
}

/// The calls a sync makes: every report of `version` (or those asked for) × every period.
fn jobs(
    source: &SyncSource,
    version: Version,
) -> Result<Vec<(&'static ReportType, Option<Period>)>> {
    let reports: Vec<&'static ReportType> = if source.reports.is_empty() {
        REPORTS.iter().filter(|r| r.exists_on(version)).collect()
    } else {
        if let Some(missing) = source.reports.iter().find(|r| !r.exists_on(version)) {
            return Err(anyhow!(
                "{} is not on {}: sync it from a {} endpoint",
                missing.function.name,
                version.segment(),
                if version == Version::V1 {
                    "beta"
                } else {
                    "v1.0"
                }
            ));
        }
        source.reports.clone()
    };
    Ok(reports
        .into_iter()
        .flat_map(|report| {
            let periods: Vec<Option<Period>> = if report.function.takes_period {
                Period::ALL.into_iter().map(Some).collect()
            } else {
                vec![None]
            };
            periods.into_iter().map(move |period| (report, period))
        })
        .collect())
}

/// Pulls every report and period; returns the totals, or the first failure after trying all.
pub async fn sync(
    storage: &dyn Storage,
    tenant: TenantId,
    source: &SyncSource,
) -> Result<UpsertCounts> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(source.timeout)
        .build()?;
    let token = match &source.token {
        Some(token) => token.clone(),
        None => client_credentials_token(&client, tenant, source).await?,
    };
    let base = source.base.trim_end_matches('/');
    let version = version_of(base);
    let mut total = UpsertCounts::default();
    let mut failures = Vec::new();
    let jobs = jobs(source, version)?;
    let mut pacer = Pacer::new(source.pace);
    for (done, (report, period)) in jobs.iter().copied().enumerate() {
        let url = function_url(base, report, period);
        let step = format!("[{}/{}]", done + 1, jobs.len());
        pacer.ready(report.function.name).await;
        let result = match fetch_csv(&client, &url, &token, source.attempts).await {
            Ok(bytes) => store(storage, tenant, report, period, &url, &bytes).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(counts) => {
                out(&format!(
                    "{step} {url}: {} inserted, {} updated, {} unchanged",
                    counts.inserted, counts.updated, counts.unchanged
                ));
                total.inserted += counts.inserted;
                total.updated += counts.updated;
                total.unchanged += counts.unchanged;
            }
            Err(error) => {
                out(&format!("{step} FAILED {}", one_line(error.as_ref())));
                failures.push(error);
            }
        }
    }
    out(&format!(
        "sync: {} inserted, {} updated, {} unchanged, {} reports failed",
        total.inserted,
        total.updated,
        total.unchanged,
        failures.len()
    ));
    match failures.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(total),
    }
}

/// The API version of a base URL. Why: Graph's beta has more reports than v1.0; each version
/// is asked only for its own.
fn version_of(base: &str) -> Version {
    if base.to_ascii_lowercase().ends_with("/beta") {
        Version::Beta
    } else {
        Version::V1
    }
}

/// Stores one downloaded report CSV; nothing of it when a row is bad.
async fn store(
    storage: &dyn Storage,
    tenant: TenantId,
    report: &'static ReportType,
    period: Option<Period>,
    url: &str,
    bytes: &[u8],
) -> Result<UpsertCounts> {
    // Several reports share a header: the file is read as the report asked for.
    let parsed = read_csv_of(bytes, report, period).map_err(|p| anyhow!("{url}: {p}"))?;
    if let Some(problem) = parsed.problems.first() {
        bail!(
            "{url}: {} bad rows, nothing written (first: {problem})",
            parsed.problems.len()
        );
    }
    let rows = parsed.rows.into_iter().map(|(_, v)| v).collect();
    storage
        .upsert_many(tenant, report, rows)
        .await
        .with_context(|| url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A third call within the window waits for the first to leave it; other APIs do not.
    #[tokio::test]
    async fn pacer_keeps_each_api_under_its_limit() {
        let window = Duration::from_secs(2);
        let mut pacer = Pacer::new((2, window));
        let started = Instant::now();
        pacer.ready("getA").await;
        pacer.ready("getA").await;
        pacer.ready("getB").await;
        assert!(started.elapsed() < window, "no wait below the limit");
        pacer.ready("getA").await;
        assert!(started.elapsed() >= window, "the third call waited");
    }
}
