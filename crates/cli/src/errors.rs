//! How the CLI prints an error: what it was doing, then each cause, on one line.

/// `error`'s message and each of its causes, joined by `: `, e.g.
/// "cannot open the PostgreSQL database: database error: cannot connect to PostgreSQL at
/// 127.0.0.1:5432: connection refused".
///
/// Why not anyhow's `{:#}` alone: some errors already write their cause into their own
/// message (storage's `BackendError`, the TLS loader's errors) and others leave it to
/// `source()`; a cause whose text the line already holds is not repeated.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        next = cause.source();
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;
    use anyhow::Context;

    #[test]
    fn names_every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = Err::<(), _>(io)
            .context("cannot read config file x.toml")
            .expect_err("failed");
        assert_eq!(
            one_line(error.as_ref()),
            "cannot read config file x.toml: no such file"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("database error: {0}")]
        struct Wrapping(#[source] std::io::Error);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = anyhow::Error::new(Wrapping(io)).context("cannot open the database");
        assert_eq!(
            one_line(error.as_ref()),
            "cannot open the database: database error: connection refused"
        );
    }
}
