//! Redaction of secrets in connection strings and free text, and URLs
//! scrubbed from storage error texts. Every place that prints a connection
//! target goes through here. A leaf: it depends on nothing in pgkeep, so
//! the error type (which scrubs) and `config` (which redacts) both sit
//! above it.

/// Replaces the password of a libpq connection string (URL or `key=value`)
/// with `***`; other text is returned unchanged. Never fails.
pub fn redact_conninfo(conninfo: &str) -> String {
    let s = conninfo.trim();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        redact_url(s)
    } else {
        redact_keyvalue(s)
    }
}

/// A libpq connection string (URL or `key=value`) without its password
/// (`password`, `sslpassword`, URL userinfo): what a subscription's
/// connection string keeps in a backup.
pub fn strip_conninfo_password(conninfo: &str) -> String {
    let masked = redact_conninfo(conninfo);
    if masked.contains("://") {
        let url = masked.replacen(":***@", "@", 1);
        let Some((head, query)) = url.split_once('?') else {
            return url;
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !(p.ends_with("password=***") && strip_password_key(p).is_some()))
            .collect();
        return if kept.is_empty() {
            head.to_string()
        } else {
            format!("{head}?{}", kept.join("&"))
        };
    }
    masked
        .split_whitespace()
        .filter(|w| strip_password_key(w) != Some("***"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes anything that looks like a secret from a free-form message:
/// URL userinfo passwords and `password=` pairs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.contains("://") {
            out.push_str(&redact_url(word));
        } else if let Some(rest) = strip_password_key(word) {
            let _ = rest;
            out.push_str("password=***");
        } else {
            out.push_str(word);
        }
    }
    out
}

fn strip_password_key(word: &str) -> Option<&str> {
    let lower = word.to_ascii_lowercase();
    for key in ["password=", "sslpassword="] {
        if lower.starts_with(key) {
            return Some(&word[key.len()..]);
        }
    }
    None
}

fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let after = scheme_end + 3;
    let rest = &url[after..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..after]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    // Query parameters may carry `password=...` too.
    let tail = &rest[authority_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let params: Vec<String> = tail[q + 1..]
                .split('&')
                .map(|p| match strip_password_key(p) {
                    Some(_) => "password=***".to_string(),
                    None => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

fn redact_keyvalue(s: &str) -> String {
    // Quoted values may contain spaces: walk the string instead of splitting.
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some(&(start, _)) = chars.peek() {
        // copy whitespace
        if s[start..].starts_with(char::is_whitespace) {
            let (_, c) = chars.next().unwrap_or((start, ' '));
            out.push(c);
            continue;
        }
        let key_end = s[start..].find('=').map(|i| start + i);
        let Some(key_end) = key_end else {
            out.push_str(&s[start..]);
            break;
        };
        let key = s[start..key_end].trim();
        // advance past key and '='
        while let Some(&(i, _)) = chars.peek() {
            if i > key_end {
                break;
            }
            chars.next();
        }
        let value_start = key_end + 1;
        let mut value_end = s.len();
        let mut in_quote = false;
        let mut escaped = false;
        let mut first = true;
        while let Some(&(i, c)) = chars.peek() {
            if first && c == '\'' {
                in_quote = true;
                first = false;
                chars.next();
                continue;
            }
            first = false;
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if in_quote && c == '\'' {
                chars.next();
                value_end = i + 1;
                break;
            } else if !in_quote && c.is_whitespace() {
                value_end = i;
                break;
            }
            chars.next();
        }
        out.push_str(&s[start..=key_end]);
        if key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword") {
            out.push_str("***");
        } else {
            out.push_str(&s[value_start..value_end.min(s.len())]);
        }
    }
    out
}

/// Removes URLs (endpoints, object addresses) from a storage error text, so
/// messages name the repository only by its scheme/bucket/prefix.
pub fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |p| p + 1);
        out.push_str(&rest[..start]);
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | ',' | '>'))
            .unwrap_or(after.len());
        out.push_str("<url>");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn subscription_connection_strings_lose_their_password() {
        assert_eq!(
            strip_conninfo_password("host=db port=5432 user=repl password='s3 cr\\'et' dbname=app"),
            "host=db port=5432 user=repl dbname=app"
        );
        assert_eq!(
            strip_conninfo_password("host=db sslpassword=x password=y user=u"),
            "host=db user=u"
        );
        assert_eq!(
            strip_conninfo_password(
                "postgres://repl:secret@db:5432/app?sslmode=require&password=p2"
            ),
            "postgres://repl@db:5432/app?sslmode=require"
        );
        assert_eq!(
            strip_conninfo_password("host=db dbname=app"),
            "host=db dbname=app"
        );
    }
    #[test]
    fn scrub_removes_urls() {
        let s = scrub_urls("Error performing PUT http://127.0.0.1:9000/bucket/x?uploadId=1 in 2s - error sending request for url (https://s3.amazonaws.com/b): refused");
        assert_eq!(
            s,
            "Error performing PUT <url> in 2s - error sending request for url (<url>): refused"
        );
        assert_eq!(scrub_urls("no url here"), "no url here");
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn url_password_is_hidden() {
        assert_eq!(
            redact_conninfo("postgres://alice:s3cret@db:5432/app?sslmode=require"),
            "postgres://alice:***@db:5432/app?sslmode=require"
        );
        assert_eq!(
            redact_conninfo("postgresql://db/app?user=bob&password=hunter2"),
            "postgresql://db/app?user=bob&password=***"
        );
        assert_eq!(redact_conninfo("postgres://db/app"), "postgres://db/app");
    }

    #[test]
    fn keyvalue_password_is_hidden() {
        assert_eq!(
            redact_conninfo("host=db password=hunter2 user=x"),
            "host=db password=*** user=x"
        );
        assert_eq!(
            redact_conninfo("host=db password='a b\\' c' dbname=app"),
            "host=db password=*** dbname=app"
        );
    }

    #[test]
    fn free_text_is_scrubbed() {
        let msg = "cannot reach postgres://u:pw@h/db with password=pw";
        let r = redact(msg);
        assert!(!r.contains("pw@"), "{r}");
        assert!(!r.contains("=pw"), "{r}");
    }

    proptest! {
        #[test]
        fn url_secret_never_survives(pw in "[A-Za-z0-9_.~-]{6,20}", user in "[a-z]{1,8}", host in "[a-z]{1,8}") {
            let url = format!("postgres://{user}:{pw}@{host}:5432/db?application_name=x");
            let r = redact_conninfo(&url);
            prop_assert!(!r.contains(&pw));
            let kv = format!("host={host} user={user} password={pw} dbname=db");
            prop_assert!(!redact_conninfo(&kv).contains(&pw));
            prop_assert!(!redact(&url).contains(&pw));
        }

        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = redact_conninfo(&s);
            let _ = redact(&s);
        }
    }
}
