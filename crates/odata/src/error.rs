//! Graph's error envelope: `{"error":{"code","message","innerError":{...}}}`.

use serde::Serialize;

/// The identifiers Graph puts in `innerError`.
#[derive(Debug, Clone, Serialize)]
pub struct InnerError<'a> {
    /// UTC time of the answer, `YYYY-MM-DDTHH:MM:SS`.
    pub date: &'a str,
    /// The server's id of the request.
    #[serde(rename = "request-id")]
    pub request_id: &'a str,
    /// The client's id of the request (echoed, or made up when absent).
    #[serde(rename = "client-request-id")]
    pub client_request_id: &'a str,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    inner_error: InnerError<'a>,
}

/// Renders the error envelope.
pub fn error_json(code: &str, message: &str, inner: InnerError<'_>) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        error: Body {
            code,
            message,
            inner_error: inner,
        },
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape() {
        let body = error_json(
            "itemNotFound",
            "gone",
            InnerError {
                date: "2026-01-01T00:00:00",
                request_id: "r",
                client_request_id: "c",
            },
        );
        assert_eq!(
            String::from_utf8(body).expect("utf8"),
            r#"{"error":{"code":"itemNotFound","message":"gone","innerError":{"date":"2026-01-01T00:00:00","request-id":"r","client-request-id":"c"}}}"#
        );
    }
}
