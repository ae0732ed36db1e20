//! The sign-in form's HTML: one self-contained page (inline CSS, no script, no external
//! asset), labelled fields, the error announced to screen readers.

/// What the sign-in form shows.
pub(crate) struct SigninForm<'a> {
    /// The double-submit CSRF token (also in the form's cookie).
    pub csrf: &'a str,
    /// Where to go after signing in (already checked).
    pub next: &'a str,
    /// The name typed before, kept after a failure.
    pub username: &'a str,
    /// Why the last attempt failed.
    pub error: Option<&'a str>,
    /// Whether "Sign in with Entra ID" is offered (an external issuer is configured).
    pub external: bool,
}

/// `text` with HTML's special characters escaped, for element content and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
background:#f3f4f6;color:#111827}\
main{max-width:22rem;margin:10vh auto;padding:2rem;background:#fff;border-radius:8px;\
box-shadow:0 1px 3px rgba(0,0,0,.15)}\
h1{font-size:1.4rem;margin:0 0 1.5rem}\
label{display:block;font-weight:600;margin:1rem 0 .25rem}\
input{box-sizing:border-box;width:100%;padding:.55rem .6rem;font:inherit;\
border:1px solid #6b7280;border-radius:4px}\
input:focus,button:focus{outline:3px solid #2563eb;outline-offset:2px}\
button{margin-top:1.5rem;width:100%;padding:.6rem;font:inherit;font-weight:600;color:#fff;\
background:#1d4ed8;border:0;border-radius:4px;cursor:pointer}\
button:hover{background:#1e40af}\
.error{margin:0 0 1rem;padding:.6rem .75rem;border-left:4px solid #b91c1c;background:#fef2f2;\
color:#7f1d1d}\
.or{margin:1.5rem 0 0;text-align:center;color:#4b5563}\
a.external{display:block;box-sizing:border-box;margin-top:.75rem;padding:.6rem;text-align:center;\
font-weight:600;color:#1d4ed8;border:2px solid #1d4ed8;border-radius:4px;text-decoration:none}\
a.external:hover{background:#eff6ff}\
a.external:focus{outline:3px solid #2563eb;outline-offset:2px}";

/// The whole sign-in page.
pub(crate) fn signin_page(form: &SigninForm<'_>) -> String {
    let error = form
        .error
        .map(|message| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"signin-error\">{}</p>\n",
                escape(message)
            )
        })
        .unwrap_or_default();
    let described = if form.error.is_some() {
        " aria-describedby=\"signin-error\""
    } else {
        ""
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Sign in · reportroot</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <main>\n<h1>Sign in to reportroot</h1>\n{error}\
         <form method=\"post\" action=\"/dashboard/signin\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\n\
         <label for=\"username\">User name</label>\n\
         <input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" required autofocus value=\"{username}\"{described}>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{described}>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n{external}</main>\n</body>\n</html>\n",
        external = external_link(form),
        csrf = escape(form.csrf),
        next = escape(form.next),
        username = escape(form.username),
    )
}

/// The "Sign in with Entra ID" link (a plain link: the page has no script), if offered.
fn external_link(form: &SigninForm<'_>) -> String {
    if !form.external {
        return String::new();
    }
    let next: String = form_urlencoded::byte_serialize(form.next.as_bytes()).collect();
    format!(
        "<p class=\"or\">or</p>\n<a class=\"external\" id=\"signin-entra\" \
         href=\"/dashboard/signin/oidc/start?next={}\">Sign in with Entra ID</a>\n",
        escape(&next)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_cannot_break_out_of_their_attributes() {
        let page = signin_page(&SigninForm {
            csrf: "c",
            next: "/dashboard",
            username: "\"><script>alert(1)</script>",
            error: Some("<b>no</b>"),
            external: false,
        });
        assert!(!page.contains("<script>"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
        assert!(page.contains("&lt;b&gt;no&lt;/b&gt;"));
        assert!(page.contains("name=\"username\""));
        assert!(page.contains("name=\"password\""));
        assert!(!page.contains("Entra ID"));
    }

    #[test]
    fn the_entra_link_keeps_next() {
        let page = signin_page(&SigninForm {
            csrf: "c",
            next: "/dashboard/reports/x?a=1&b=2",
            username: "",
            error: None,
            external: true,
        });
        assert!(page.contains(
            "href=\"/dashboard/signin/oidc/start?next=%2Fdashboard%2Freports%2Fx%3Fa%3D1%26b%3D2\""
        ));
        assert!(page.contains(">Sign in with Entra ID</a>"));
    }
}
