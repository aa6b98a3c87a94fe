//! A check that recognizes the most common form of task URL, so that
//! [`super::TaskUrl::parse`] can skip the full URL parser for it. The check
//! never rejects. A URL it does not recognize goes to the full parser, which
//! alone writes the error messages.

/// Tells whether `value` has a form that `url::Url::parse` (url 2.5.9) always
/// accepts as an http(s) URL with a non-empty host:
///
/// - `http://` or `https://`, in any case
/// - a host of one or more labels separated by `.`, each made of ASCII
///   letters, digits and `-`, neither starting nor ending with `-`, and not
///   starting with the punycode prefix `xn--` in any case
/// - a last label that starts with a letter
/// - optionally `:` and a port of 1 to 5 digits, at most 65535
/// - then the end of `value`, or `/`, `?` or `#` followed by anything
///
/// The form is narrower than what the parser accepts, so that every unusual
/// URL goes to the parser. Labels and hosts have no length limit, because the
/// parser skips DNS length checks. The parser rejects no path, query or
/// fragment (only URLs longer than 4 GiB), so this function does not read
/// them. `TaskUrl::check_shape` still checks their characters and the length.
pub(super) fn is_simple_http_url(value: &str) -> bool {
    let Some(after_scheme) = strip_http_scheme(value) else {
        return false;
    };
    let authority_end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];

    match authority.split_once(':') {
        Some((host, port)) => is_simple_host(host) && is_simple_port(port),
        None => is_simple_host(authority),
    }
}

/// Strips a leading `https://` or `http://` in any case.
fn strip_http_scheme(value: &str) -> Option<&str> {
    ["https://", "http://"].into_iter().find_map(|prefix| {
        let start = value.get(..prefix.len())?;
        start.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
    })
}

fn is_simple_host(host: &str) -> bool {
    // The parser reads the host as an IPv4 address when its last label is a
    // number, decimal or hexadecimal such as `0x1f`, and rejects out-of-range
    // ones such as `1.2.3.999`. A label that starts with a letter is never a number.
    let last_label = host.rsplit('.').next().unwrap_or(host);
    last_label.starts_with(|c: char| c.is_ascii_alphabetic()) && host.split('.').all(is_simple_label)
}

fn is_simple_label(label: &str) -> bool {
    // The parser decodes and validates labels that carry the punycode prefix.
    let is_punycode = label.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("xn--"));
    !label.is_empty()
        && !label.starts_with('-')
        && !label.ends_with('-')
        && !is_punycode
        && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

fn is_simple_port(port: &str) -> bool {
    port.len() <= 5 && port.bytes().all(|byte| byte.is_ascii_digit()) && port.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::is_simple_http_url;
    use crate::task::TaskUrl;
    use crate::text::TextViolation;

    /// `TaskUrl::parse` as it was before the fast path: every URL goes
    /// through the full parser.
    fn parse_with_url_parser_only(value: &str) -> Result<TaskUrl, TextViolation> {
        TaskUrl::check_shape(value)?;
        TaskUrl::check_with_url_parser(value)?;
        Ok(TaskUrl(value.to_owned()))
    }

    #[test]
    fn fast_path_accepts_simple_urls() {
        let long_label = "a".repeat(100);
        for value in [
            "https://Tracker.Example.com:8443/a?b#c",
            "HTTP://localhost",
            "hTTpS://client.com/tasks/TASK-001",
            "http://a-b.c1d/",
            "https://1password.com/x",
            "https://my--host.example/x",
            "https://a.b:0/",
            "https://a.b:00080",
            "https://a.b:65535?q",
            "https://a.b#f",
            "https://a.b/@user:x",
            &format!("https://{long_label}.example/"),
        ] {
            assert!(is_simple_http_url(value), "{value}");
            assert!(TaskUrl::parse(value).is_ok(), "{value}");
            assert_eq!(TaskUrl::parse(value), parse_with_url_parser_only(value), "{value}");
        }
    }

    #[test]
    fn fast_path_leaves_other_urls_to_parser() {
        for (value, accepted) in [
            ("http://127.0.0.1:8080/x", true),
            ("https://1.2.3.999/", false),
            ("https://1.2.3.0x100/", false),
            ("https://0xff/", true),
            ("https://a..b/", true),
            ("https://.a.b/", true),
            ("https://example.com./", true),
            ("https://xn--abc.com/", false),
            ("https://XN--nxasmq6b.com/", true),
            ("https://-a.com/", true),
            ("https://a-.com/", true),
            ("https://user@example.com/", true),
            ("https://user:pw@example.com/", true),
            ("https://@example.com/", true),
            ("https://example.com:65536/", false),
            ("https://example.com:000080/", true),
            ("https://example.com:/", true),
            ("https://example.com:8x/", false),
            ("https:///example.com", false),
            ("http:////x", false),
            ("https://[::1]:8080/", true),
            ("https://exa%6Dple.com/", true),
            ("https://exa_mple.com/", true),
            ("https://bücher.example/", true),
            ("https://", false),
            ("https://:80/", false),
            ("ftp://host/x", false),
        ] {
            assert!(!is_simple_http_url(value), "{value}");
            assert_eq!(TaskUrl::parse(value).is_ok(), accepted, "{value}");
            assert_eq!(TaskUrl::parse(value), parse_with_url_parser_only(value), "{value}");
        }
    }

    /// URLs near the fast path's form: mostly simple ones, mixed with the
    /// cases it must leave to the parser.
    fn url_near_fast_path() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![
            10 => "[hH][tT][tT][pP][sS]?://",
            1 => "(https?:/{0,1}|https?:/{3}|ftp://|https?:)",
        ];
        let userinfo = prop_oneof![10 => Just(String::new()), 1 => "[a-z]{0,2}(:[a-z]{0,2})?@"];
        let label = prop_oneof![
            8 => "[a-zA-Z]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?",
            3 => "[a-zA-Z0-9-]{1,8}",
            2 => "[0-9]{1,4}",
            1 => "[xX][nN]--[a-z0-9-]{0,6}",
            1 => "[a-z0-9]{2}--[a-z0-9]{0,3}",
            1 => "0[xX][0-9a-fA-F]{0,10}",
            1 => "[a-z0-9._@:%\\[\\]ü-]{0,3}",
        ];
        let labels = proptest::collection::vec(label, 1..5).prop_map(|labels| labels.join("."));
        let trailing_dot = prop_oneof![9 => Just(""), 1 => Just(".")];
        let port = prop_oneof![
            4 => Just(String::new()),
            3 => ":[0-9]{1,5}",
            1 => ":[0-9]{0,6}",
            1 => ":6553[0-9]",
            1 => ":[0-9a-z+ -]{0,3}",
        ];
        let rest = prop_oneof![
            2 => Just(String::new()),
            4 => "[/?#][a-zA-Z0-9/?#@:%.ü\\[\\] \\\\-]{0,8}",
            1 => "[@\\\\ :a-z][a-z0-9/@]{0,4}",
        ];
        (scheme, userinfo, labels, trailing_dot, port, rest).prop_map(|(scheme, userinfo, labels, dot, port, rest)| {
            format!("{scheme}{userinfo}{labels}{dot}{port}{rest}")
        })
    }

    proptest::proptest! {
        // About a quarter of the generated URLs take the fast path, so this runs more cases than the default 256.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn fast_path_accepts_only_what_parser_accepts(value in url_near_fast_path()) {
            if is_simple_http_url(&value) {
                let parsed = url::Url::parse(&value);
                prop_assert!(parsed.is_ok(), "{value}: {parsed:?}");
                let parsed = parsed.unwrap();
                prop_assert!(matches!(parsed.scheme(), "http" | "https"), "{value}");
                prop_assert!(parsed.host_str().is_some_and(|host| !host.is_empty()), "{value}");
                if TaskUrl::check_shape(&value).is_ok() {
                    prop_assert!(parse_with_url_parser_only(&value).is_ok(), "{value}");
                }
            }
        }

        #[test]
        fn parse_matches_parser_only_version(value in url_near_fast_path()) {
            prop_assert_eq!(TaskUrl::parse(value.as_str()), parse_with_url_parser_only(&value), "{}", value);
        }
    }
}
