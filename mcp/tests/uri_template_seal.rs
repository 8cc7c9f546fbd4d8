//! Resource URIs, URI templates and sealed tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbor_mcp::seal::{SealError, SealKey, Sealer, DEFAULT_MAX_TOKEN_LEN};
use arbor_mcp::template::{TemplateError, TemplateValue, TemplateVar, UriTemplate, Variables};
use arbor_mcp::uri::{ResourceUri, UriError, DEFAULT_MAX_URI_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

// ---------------------------------------------------------------------------
// ResourceUri

fn norm(s: &str) -> String {
    ResourceUri::parse(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .as_str()
        .to_owned()
}

#[test]
fn uri_accepts_mcp_shapes_unchanged() {
    for s in [
        "file:///a/b",
        "test://static/resource",
        "mcp://x",
        "users://42/profile",
        "search://items?q=rust&page=2#top",
        "urn:isbn:0451450523",
    ] {
        assert_eq!(norm(s), s);
    }
}

#[test]
fn uri_normalises_case_percent_encoding_and_dot_segments() {
    assert_eq!(norm("FILE:///A/%7e/./b/../c"), "file:///A/~/c");
    assert_eq!(
        norm("Test://Static.Host/Resource"),
        "test://static.host/Resource"
    );
    assert_eq!(norm("x://h/a%3ab%2f"), "x://h/a%3Ab%2F");
    assert_eq!(norm("x://h/%41%62%63%2D%5F"), "x://h/Abc-_");
    assert_eq!(norm("file:///a/b/../c"), "file:///a/c");
    assert_eq!(norm("file:///a/./b/."), "file:///a/b/");
    assert_eq!(norm("file:///a/%2e/b"), "file:///a/b");
    assert_eq!(norm("http://HOST:80/a"), "http://host/a");
    assert_eq!(norm("x://h/a?Q=%7e#F"), "x://h/a?Q=~#F");

    let a = ResourceUri::parse("FILE:///A/%7e/./b/../c").unwrap();
    let b = ResourceUri::parse("file:///A/~/c").unwrap();
    assert_eq!(a, b);
    let set: HashSet<ResourceUri> = [a.clone(), b.clone()].into_iter().collect();
    assert_eq!(set.len(), 1);
    // Path case is significant.
    assert_ne!(a, ResourceUri::parse("file:///a/~/c").unwrap());
    assert_eq!(a.to_string(), "file:///A/~/c");
    assert_eq!(a.scheme(), "file");
    assert_eq!(ResourceUri::parse("MCP://x").unwrap().scheme(), "mcp");
}

#[test]
fn uri_refuses_traversal_in_every_spelling() {
    for s in [
        "file:///..",
        "file:///../etc/passwd",
        "file:///a/../../etc/passwd",
        "file:///a/b/../../../c",
        "file:///a/./../../b",
        "file:///a/././../.././b",
        "file:///%2e%2e/etc",
        "file:///%2E%2E/etc",
        "file:///%2e%2E/etc",
        "file:///a/.%2E/.%2e/x",
        "file:///a/..%2f..%2fetc/passwd",
        "file:///a/..%2F..%2Fetc/passwd",
        "file:///a/b%2F..%2F..%2Fc",
        "file:///..%2fetc",
        "file:///a/..%5c..%5cwindows",
        "file:///a/%2e%2e%2f%2e%2e%2fetc",
        "mcp://x/..",
        "mcp://x/a/../..",
        "mcp:..",
        "mcp:../x",
        "urn:a/../../b",
        "test://static/resource/../../../secret",
    ] {
        match ResourceUri::parse(s) {
            Err(UriError::PathTraversal { uri, .. }) => assert_eq!(uri, s),
            other => panic!("{s}: expected PathTraversal, got {other:?}"),
        }
    }
}

#[test]
fn uri_refuses_non_uris() {
    for s in [
        "",
        "no-scheme",
        "/relative/path",
        "//host/path",
        "x://h/%zz",
        "x://h/a b",
        "x://h/é",
        "1x://h",
    ] {
        assert!(
            matches!(ResourceUri::parse(s), Err(UriError::Invalid { .. })),
            "{s}: {:?}",
            ResourceUri::parse(s)
        );
    }
    let err = ResourceUri::parse("x://h/%zz").unwrap_err();
    assert!(err.to_string().contains("x://h/%zz"), "{err}");
}

#[test]
fn uri_length_limit_is_exact() {
    let prefix = "test://r/";
    let at_limit = format!("{prefix}{}", "a".repeat(DEFAULT_MAX_URI_LEN - prefix.len()));
    assert_eq!(at_limit.len(), 8192);
    assert_eq!(ResourceUri::parse(&at_limit).unwrap().as_str(), at_limit);
    let over = format!("{at_limit}a");
    assert_eq!(
        ResourceUri::parse(&over),
        Err(UriError::TooLong {
            len: 8193,
            max: 8192
        })
    );

    let s = "test://r/abcdefghij"; // 19 bytes
    assert!(ResourceUri::parse_with_limit(s, 19).is_ok());
    assert_eq!(
        ResourceUri::parse_with_limit(s, 18),
        Err(UriError::TooLong { len: 19, max: 18 })
    );
}

#[test]
fn uri_serde_round_trip_and_validation() {
    let uri: ResourceUri = serde_json::from_str("\"FILE:///a/./b\"").unwrap();
    assert_eq!(uri.as_str(), "file:///a/b");
    assert_eq!(serde_json::to_string(&uri).unwrap(), "\"file:///a/b\"");
    assert!(serde_json::from_str::<ResourceUri>("\"file:///../x\"").is_err());
    let parsed: ResourceUri = "mcp://x".parse().unwrap();
    assert_eq!(parsed.into_string(), "mcp://x");
}

// ---------------------------------------------------------------------------
// UriTemplate: syntax

fn malformed_at(template: &str) -> usize {
    match UriTemplate::parse(template) {
        Err(TemplateError::Malformed {
            template: t,
            position,
            ..
        }) => {
            assert_eq!(t, template);
            position
        }
        other => panic!("{template}: expected Malformed, got {other:?}"),
    }
}

#[test]
fn template_syntax_errors_have_positions() {
    assert_eq!(malformed_at("x{"), 1);
    assert_eq!(malformed_at("abc{var"), 3);
    assert_eq!(malformed_at("x}"), 1);
    assert_eq!(malformed_at("{}"), 1);
    assert_eq!(malformed_at("a{=x}"), 2);
    assert_eq!(malformed_at("{,x}"), 1);
    assert_eq!(malformed_at("{!x}"), 1);
    assert_eq!(malformed_at("{|x}"), 1);
    assert_eq!(malformed_at("{a b}"), 2);
    assert_eq!(malformed_at("{a-b}"), 2);
    assert_eq!(malformed_at("{x:0}"), 3);
    assert_eq!(malformed_at("{x:10000}"), 3);
    assert_eq!(malformed_at("{x:}"), 3);
    assert_eq!(malformed_at("{x:1a}"), 3);
    assert_eq!(malformed_at("{x*y}"), 2);
    assert_eq!(malformed_at("{.}"), 2);
    assert_eq!(malformed_at("{a..b}"), 3);
    assert_eq!(malformed_at("{.a}{a.}"), 6);
    assert_eq!(malformed_at("{a,}"), 3);
    assert_eq!(malformed_at("{a,,b}"), 3);
    assert_eq!(malformed_at("{a%2}"), 2);
    assert_eq!(malformed_at("a%zz"), 1);
    assert_eq!(malformed_at("a b"), 1);
    assert_eq!(malformed_at("x://{id}/<p>"), 9);
    assert_eq!(malformed_at("{a{b}"), 2);

    for ok in [
        "",
        "plain",
        "{var}",
        "{+a_b.c%20d}",
        "{x:9999}",
        "{list*}",
        "x://{a}{/b*}{?c,d:3}{&e}{#f}",
        "%7Efoo",
    ] {
        UriTemplate::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let err = UriTemplate::parse("x{").unwrap_err();
    assert!(err.to_string().contains("x{"), "{err}");
    assert!(err.to_string().contains("byte 1"), "{err}");
}

#[test]
fn template_lists_variables() {
    let t = UriTemplate::parse("x://{a}/{b}{?a,c*}").unwrap();
    assert_eq!(t.variables().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(t.as_str(), "x://{a}/{b}{?a,c*}");
    assert_eq!(t.to_string(), t.as_str());
}

// ---------------------------------------------------------------------------
// UriTemplate: expansion (RFC 6570 §3.2 examples)

fn rfc_vars() -> Variables {
    Variables::new()
        .with("count", vec!["one", "two", "three"])
        .with("dom", vec!["example", "com"])
        .with("dub", "me/too")
        .with("hello", "Hello World!")
        .with("half", "50%")
        .with("var", "value")
        .with("who", "fred")
        .with("base", "http://example.com/home/")
        .with("path", "/foo/bar")
        .with("list", vec!["red", "green", "blue"])
        .with("keys", vec![("semi", ";"), ("dot", "."), ("comma", ",")])
        .with("v", "6")
        .with("x", "1024")
        .with("y", "768")
        .with("empty", "")
        .with("empty_keys", Vec::<(String, String)>::new())
}

const RFC_EXAMPLES: &[(&str, &str)] = &[
    // 3.2.1 variable expansion
    ("{count}", "one,two,three"),
    ("{count*}", "one,two,three"),
    ("{/count}", "/one,two,three"),
    ("{/count*}", "/one/two/three"),
    ("{;count}", ";count=one,two,three"),
    ("{;count*}", ";count=one;count=two;count=three"),
    ("{?count}", "?count=one,two,three"),
    ("{?count*}", "?count=one&count=two&count=three"),
    ("{&count*}", "&count=one&count=two&count=three"),
    // 3.2.2 simple
    ("{var}", "value"),
    ("{hello}", "Hello%20World%21"),
    ("{half}", "50%25"),
    ("O{empty}X", "OX"),
    ("O{undef}X", "OX"),
    ("{x,y}", "1024,768"),
    ("{x,hello,y}", "1024,Hello%20World%21,768"),
    ("?{x,empty}", "?1024,"),
    ("?{x,undef}", "?1024"),
    ("?{undef,y}", "?768"),
    ("{var:3}", "val"),
    ("{var:30}", "value"),
    ("{list}", "red,green,blue"),
    ("{list*}", "red,green,blue"),
    ("{keys}", "semi,%3B,dot,.,comma,%2C"),
    ("{keys*}", "semi=%3B,dot=.,comma=%2C"),
    // 3.2.3 reserved
    ("{+var}", "value"),
    ("{+hello}", "Hello%20World!"),
    ("{+half}", "50%25"),
    ("{base}index", "http%3A%2F%2Fexample.com%2Fhome%2Findex"),
    ("{+base}index", "http://example.com/home/index"),
    ("O{+empty}X", "OX"),
    ("O{+undef}X", "OX"),
    ("{+path}/here", "/foo/bar/here"),
    ("here?ref={+path}", "here?ref=/foo/bar"),
    ("up{+path}{var}/here", "up/foo/barvalue/here"),
    ("{+x,hello,y}", "1024,Hello%20World!,768"),
    ("{+path,x}/here", "/foo/bar,1024/here"),
    ("{+path:6}/here", "/foo/b/here"),
    ("{+list}", "red,green,blue"),
    ("{+list*}", "red,green,blue"),
    ("{+keys}", "semi,;,dot,.,comma,,"),
    ("{+keys*}", "semi=;,dot=.,comma=,"),
    // 3.2.4 fragment
    ("{#var}", "#value"),
    ("{#hello}", "#Hello%20World!"),
    ("{#half}", "#50%25"),
    ("foo{#empty}", "foo#"),
    ("foo{#undef}", "foo"),
    ("{#x,hello,y}", "#1024,Hello%20World!,768"),
    ("{#path,x}/here", "#/foo/bar,1024/here"),
    ("{#path:6}/here", "#/foo/b/here"),
    ("{#list}", "#red,green,blue"),
    ("{#list*}", "#red,green,blue"),
    ("{#keys}", "#semi,;,dot,.,comma,,"),
    ("{#keys*}", "#semi=;,dot=.,comma=,"),
    // 3.2.5 label
    ("{.who}", ".fred"),
    ("{.who,who}", ".fred.fred"),
    ("{.half,who}", ".50%25.fred"),
    ("www{.dom*}", "www.example.com"),
    ("X{.var}", "X.value"),
    ("X{.empty}", "X."),
    ("X{.undef}", "X"),
    ("X{.var:3}", "X.val"),
    ("X{.list}", "X.red,green,blue"),
    ("X{.list*}", "X.red.green.blue"),
    ("X{.keys}", "X.semi,%3B,dot,.,comma,%2C"),
    ("X{.keys*}", "X.semi=%3B.dot=..comma=%2C"),
    ("X{.empty_keys}", "X"),
    ("X{.empty_keys*}", "X"),
    // 3.2.6 path segments
    ("{/who}", "/fred"),
    ("{/who,who}", "/fred/fred"),
    ("{/half,who}", "/50%25/fred"),
    ("{/who,dub}", "/fred/me%2Ftoo"),
    ("{/var}", "/value"),
    ("{/var,empty}", "/value/"),
    ("{/var,undef}", "/value"),
    ("{/var,x}/here", "/value/1024/here"),
    ("{/var:1,var}", "/v/value"),
    ("{/list}", "/red,green,blue"),
    ("{/list*}", "/red/green/blue"),
    ("{/list*,path:4}", "/red/green/blue/%2Ffoo"),
    ("{/keys}", "/semi,%3B,dot,.,comma,%2C"),
    ("{/keys*}", "/semi=%3B/dot=./comma=%2C"),
    // 3.2.7 path-style parameters
    ("{;who}", ";who=fred"),
    ("{;half}", ";half=50%25"),
    ("{;empty}", ";empty"),
    ("{;v,empty,who}", ";v=6;empty;who=fred"),
    ("{;v,bar,who}", ";v=6;who=fred"),
    ("{;x,y}", ";x=1024;y=768"),
    ("{;x,y,empty}", ";x=1024;y=768;empty"),
    ("{;x,y,undef}", ";x=1024;y=768"),
    ("{;hello:5}", ";hello=Hello"),
    ("{;list}", ";list=red,green,blue"),
    ("{;list*}", ";list=red;list=green;list=blue"),
    ("{;keys}", ";keys=semi,%3B,dot,.,comma,%2C"),
    ("{;keys*}", ";semi=%3B;dot=.;comma=%2C"),
    // 3.2.8 form-style query
    ("{?who}", "?who=fred"),
    ("{?half}", "?half=50%25"),
    ("{?x,y}", "?x=1024&y=768"),
    ("{?x,y,empty}", "?x=1024&y=768&empty="),
    ("{?x,y,undef}", "?x=1024&y=768"),
    ("{?var:3}", "?var=val"),
    ("{?list}", "?list=red,green,blue"),
    ("{?list*}", "?list=red&list=green&list=blue"),
    ("{?keys}", "?keys=semi,%3B,dot,.,comma,%2C"),
    ("{?keys*}", "?semi=%3B&dot=.&comma=%2C"),
    // 3.2.9 form-style query continuation
    ("{&who}", "&who=fred"),
    ("{&half}", "&half=50%25"),
    ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
    ("{&x,y,empty}", "&x=1024&y=768&empty="),
    ("{&var:3}", "&var=val"),
    ("{&list}", "&list=red,green,blue"),
    ("{&list*}", "&list=red&list=green&list=blue"),
    ("{&keys}", "&keys=semi,%3B,dot,.,comma,%2C"),
    ("{&keys*}", "&semi=%3B&dot=.&comma=%2C"),
];

#[test]
fn template_expands_every_rfc_example() {
    let vars = rfc_vars();
    for (template, expected) in RFC_EXAMPLES {
        let t = UriTemplate::parse(template).unwrap_or_else(|e| panic!("{template}: {e}"));
        assert_eq!(t.expand(&vars).unwrap(), *expected, "template {template}");
    }
}

#[test]
fn template_expansion_refuses_prefix_of_a_list() {
    let t = UriTemplate::parse("{list:3}").unwrap();
    match t.expand(&rfc_vars()) {
        Err(TemplateError::InvalidValue { name, .. }) => assert_eq!(name, "list"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// UriTemplate: matching

fn matched(template: &str, uri: &str) -> Option<Variables> {
    UriTemplate::parse(template)
        .unwrap()
        .match_uri(uri)
        .unwrap_or_else(|e| panic!("{template} ~ {uri}: {e}"))
}

fn s(v: &Variables, name: &str) -> String {
    v.get_str(name)
        .unwrap_or_else(|| panic!("{name} missing in {v:?}"))
        .to_owned()
}

#[test]
fn template_matches_simple_variables() {
    let v = matched("users://{id}/profile", "users://42/profile").unwrap();
    assert_eq!(v, Variables::new().with("id", "42"));
    let v = matched("users://{id}/profile", "users://J%C3%BCrgen%20K/profile").unwrap();
    assert_eq!(s(&v, "id"), "Jürgen K");
    let v = matched(
        "github://repos/{owner}/{repo}",
        "github://repos/arbor-rs/arbor",
    )
    .unwrap();
    assert_eq!(
        (s(&v, "owner"), s(&v, "repo")),
        ("arbor-rs".into(), "arbor".into())
    );

    // Structural mismatches.
    assert!(matched("users://{id}/profile", "users://42/settings").is_none());
    assert!(matched("users://{id}/profile", "users://42/profile/x").is_none());
    assert!(matched("users://{id}/profile", "admins://42/profile").is_none());
    assert!(matched("users://{id}/profile", "users://4/2/profile").is_none());
    assert!(matched("users://{id}/profile", "users://42/profile?x=1").is_none());
    assert!(matched("users://{id}/profile", "users://42/profile#f").is_none());
    // Reserved characters are not values of a simple variable.
    assert!(matched("users://{id}/profile", "users://a:b/profile").is_none());
    // An encoded slash decodes to `/`: not a simple variable's value.
    assert!(matched("users://{id}/profile", "users://a%2Fb/profile").is_none());
    assert!(matched("users://{id}/profile", "users://a%2fb/profile").is_none());
    assert!(matched("users://{id}/profile", "users://a%5Cb/profile").is_none());
    assert!(matched("file:///dir/{name}", "file:///dir/%2E%2E").is_none());
    // No value at all: the variable is absent.
    assert_eq!(
        matched("users://{id}/profile", "users:///profile"),
        Some(Variables::new())
    );
}

#[test]
fn template_matches_the_same_variable_consistently() {
    assert!(matched("x://{id}/{id}", "x://1/1").is_some());
    assert!(matched("x://{id}/{id}", "x://1/2").is_none());
}

#[test]
fn template_matches_reserved_expansion_without_traversal() {
    let v = matched("file:///{+path}", "file:///a/b/c.txt").unwrap();
    assert_eq!(s(&v, "path"), "a/b/c.txt");
    let v = matched("file:///{+path}", "file:///a/b%20c/d").unwrap();
    assert_eq!(s(&v, "path"), "a/b c/d");
    assert!(matched("file:///{+path}", "file:///a/../etc/passwd").is_none());
    assert!(matched("file:///{+path}", "file:///..").is_none());
    assert!(matched("file:///{+path}", "file:///a/%2E%2E/b").is_none());
    let v = matched("{+x,y}", "1024,768").unwrap();
    assert_eq!((s(&v, "x"), s(&v, "y")), ("1024".into(), "768".into()));
}

#[test]
fn template_matches_query_parameters_in_any_order() {
    let t = "search://items{?q,page}";
    let v = matched(t, "search://items?q=rust%20lang&page=2").unwrap();
    assert_eq!(
        (s(&v, "q"), s(&v, "page")),
        ("rust lang".into(), "2".into())
    );
    let v = matched(t, "search://items?page=2&q=rust").unwrap();
    assert_eq!((s(&v, "q"), s(&v, "page")), ("rust".into(), "2".into()));
    let v = matched(t, "search://items?page=3").unwrap();
    assert_eq!(v, Variables::new().with("page", "3"));
    assert_eq!(matched(t, "search://items").unwrap(), Variables::new());
    let v = matched(t, "search://items?q=a%2Fb&page=").unwrap();
    assert_eq!((s(&v, "q"), s(&v, "page")), ("a/b".into(), String::new()));

    assert!(matched(t, "search://items?q=a&q=b").is_none(), "duplicate");
    assert!(matched(t, "search://items?q=a&x=1").is_none(), "unknown");
    assert!(matched(t, "search://other?q=a").is_none());
    assert!(matched(t, "search://items?q=a#frag").is_none());

    // Continuation and fixed literal pairs.
    let t = "search://items?type=all{&q,page}";
    let v = matched(t, "search://items?page=1&type=all&q=x").unwrap();
    assert_eq!((s(&v, "q"), s(&v, "page")), ("x".into(), "1".into()));
    assert!(
        matched(t, "search://items?q=x").is_none(),
        "fixed pair missing"
    );
    assert!(matched(t, "search://items?type=some&q=x").is_none());

    // Exploded query variables: repeated names give a list, leftovers an assoc.
    let v = matched("x://s{?list*}", "x://s?list=red&list=green").unwrap();
    assert_eq!(
        v.get("list"),
        Some(&TemplateValue::List(vec!["red".into(), "green".into()]))
    );
    let v = matched("x://s{?q,opts*}", "x://s?a=1&q=z&b=%3B").unwrap();
    assert_eq!(s(&v, "q"), "z");
    assert!(
        matched("x://s{?q,opts*}", "x://s?q=a&q=b").is_none(),
        "a named parameter twice is not a match, even with a catch-all"
    );
    assert_eq!(
        v.get("opts"),
        Some(&TemplateValue::from(vec![("a", "1"), ("b", ";")]))
    );

    // Prefix modifier: a longer value is not one the template produces.
    assert!(matched("x://s{?var:3}", "x://s?var=val").is_some());
    assert!(matched("x://s{?var:3}", "x://s?var=value").is_none());

    // Query followed by a fragment expression.
    let v = matched("x://s{?q}{#sec}", "x://s?q=1#intro").unwrap();
    assert_eq!((s(&v, "q"), s(&v, "sec")), ("1".into(), "intro".into()));
}

#[test]
fn template_matches_exploded_path_label_and_params() {
    let v = matched("repo://files{/path*}", "repo://files/a/b/c").unwrap();
    assert_eq!(
        v.get("path"),
        Some(&TemplateValue::from(vec!["a", "b", "c"]))
    );
    let v = matched("repo://files{/path*}/meta", "repo://files/a/b/meta").unwrap();
    assert_eq!(v.get("path"), Some(&TemplateValue::from(vec!["a", "b"])));
    assert!(matched("repo://files{/path*}", "repo://files/a/%2E%2E/b").is_none());
    assert!(matched("repo://files{/path*}", "repo://files/a%2Fb").is_none());

    let v = matched("{/who,dub}", "/fred/me").unwrap();
    assert_eq!((s(&v, "who"), s(&v, "dub")), ("fred".into(), "me".into()));
    let v = matched("{/var,x}/here", "/value/1024/here").unwrap();
    assert_eq!((s(&v, "var"), s(&v, "x")), ("value".into(), "1024".into()));

    let v = matched("www{.dom*}", "www.example.com").unwrap();
    assert_eq!(
        v.get("dom"),
        Some(&TemplateValue::from(vec!["example", "com"]))
    );
    let v = matched("X{.keys*}", "X.semi=%3B.dot=%2E.comma=%2C").unwrap();
    assert_eq!(
        v.get("keys"),
        Some(&TemplateValue::from(vec![
            ("semi", ";"),
            ("dot", "."),
            ("comma", ",")
        ]))
    );

    let v = matched("map{;x,y}", "map;x=1024;y=768").unwrap();
    assert_eq!((s(&v, "x"), s(&v, "y")), ("1024".into(), "768".into()));
    let v = matched("map{;v,empty,who}", "map;v=6;empty;who=fred").unwrap();
    assert_eq!(s(&v, "empty"), "");
    let v = matched("m{;list*}", "m;list=red;list=green").unwrap();
    assert_eq!(
        v.get("list"),
        Some(&TemplateValue::from(vec!["red", "green"]))
    );

    let v = matched("doc://x{#section}", "doc://x#intro").unwrap();
    assert_eq!(s(&v, "section"), "intro");
    assert!(matched("doc://x{#section}", "doc://y#intro").is_none());
}

#[test]
fn template_match_inverts_expansion() {
    let vars = Variables::new()
        .with("id", "a b&c")
        .with("q", "x/y?z")
        .with("page", "2")
        .with("path", vec!["p", "q r"])
        .with("sec", "s");
    for template in [
        "users://{id}/profile",
        "users://{id}{/path*}{?q,page}{#sec}",
        "x://h{/id}{;page}{?q}",
        "x://{+id}/x",
    ] {
        let t = UriTemplate::parse(template).unwrap();
        let uri = t.expand(&vars).unwrap();
        let back = t
            .match_uri(&uri)
            .unwrap()
            .unwrap_or_else(|| panic!("{uri}"));
        for name in t.variables() {
            assert_eq!(
                back.get(name),
                vars.get(name),
                "{template}: {name} via {uri}"
            );
        }
    }
}

#[test]
fn template_variable_constraints() {
    let t = UriTemplate::parse("users://{id}/profile")
        .unwrap()
        .with_var(
            TemplateVar::new("id")
                .pattern(r"\d+")
                .unwrap()
                .max_len(5)
                .required(),
        )
        .unwrap();
    assert_eq!(
        t.match_uri("users://42/profile")
            .unwrap()
            .unwrap()
            .get_str("id"),
        Some("42")
    );
    match t.match_uri("users://4a2/profile") {
        Err(TemplateError::InvalidValue { name, value, .. }) => {
            assert_eq!((name.as_str(), value.as_str()), ("id", "4a2"));
        }
        other => panic!("{other:?}"),
    }
    // Anchored: a pattern matching part of the value is not enough.
    assert!(t.match_uri("users://12x/profile").is_err());
    match t.match_uri("users://123456/profile") {
        Err(TemplateError::InvalidValue {
            name,
            value,
            reason,
        }) => {
            assert_eq!((name.as_str(), value.as_str()), ("id", "123456"));
            assert!(reason.contains('5'), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.match_uri("users:///profile").unwrap_err(),
        TemplateError::MissingVariable { name: "id".into() }
    );
    // Not a match stays not a match, whatever the constraints.
    assert_eq!(t.match_uri("users://42/other").unwrap(), None);

    // Expansion checks the same constraints.
    assert_eq!(
        t.expand(&Variables::new().with("id", "7")).unwrap(),
        "users://7/profile"
    );
    assert!(matches!(
        t.expand(&Variables::new().with("id", "x")),
        Err(TemplateError::InvalidValue { .. })
    ));
    assert!(matches!(
        t.expand(&Variables::new()),
        Err(TemplateError::MissingVariable { .. })
    ));

    // Length counts characters of the decoded value; lists item by item.
    let t = UriTemplate::parse("x://s{/path*}")
        .unwrap()
        .with_var(TemplateVar::new("path").max_len(2))
        .unwrap();
    assert!(t.match_uri("x://s/%C3%BC%C3%BC/ab").unwrap().is_some());
    assert!(t.match_uri("x://s/ab/abc").is_err());

    assert!(matches!(
        UriTemplate::parse("x://{a}").unwrap().with_var(TemplateVar::new("b")),
        Err(TemplateError::UnknownVariable { name, .. }) if name == "b"
    ));
    assert!(matches!(
        TemplateVar::new("a").pattern("("),
        Err(TemplateError::InvalidPattern { name, pattern, .. }) if name == "a" && pattern == "("
    ));
}

#[test]
fn template_match_refuses_non_utf8_values() {
    let t = UriTemplate::parse("x://{id}").unwrap();
    assert!(matches!(
        t.match_uri("x://%FF"),
        Err(TemplateError::InvalidValue { name, value, .. }) if name == "id" && value == "%FF"
    ));
}

#[test]
fn template_matches_normalised_resource_uris() {
    let t = UriTemplate::parse("users://{id}/profile").unwrap();
    let uri = ResourceUri::parse("USERS://42/./profile").unwrap();
    assert_eq!(
        t.match_uri(uri.as_str()).unwrap().unwrap().get_str("id"),
        Some("42")
    );
    // A literal triplet matches its decoded or other-case spelling.
    let t = UriTemplate::parse("x://h/%7Euser/{id}").unwrap();
    assert!(t.match_uri("x://h/~user/1").unwrap().is_some());
    assert!(t.match_uri("x://h/%7euser/1").unwrap().is_some());
}

// ---------------------------------------------------------------------------
// Sealer

const PURPOSE: &str = "cursor";
const HOUR: Duration = Duration::from_secs(3600);

/// A clock that tests move by hand, in ms since the epoch.
fn manual_clock(start_ms: u64) -> (Arc<AtomicU64>, impl Fn() -> SystemTime + Send + Sync) {
    let now = Arc::new(AtomicU64::new(start_ms));
    let reader = now.clone();
    (now, move || {
        UNIX_EPOCH + Duration::from_millis(reader.load(Ordering::SeqCst))
    })
}

fn sealer() -> Sealer {
    Sealer::new(SealKey::from_bytes([7; 32]))
}

#[test]
fn seal_round_trip_url_safe() {
    let sealer = sealer();
    let payload = br#"{"offset":40,"q":"a/b?c"}"#;
    let token = sealer.seal(PURPOSE, payload, HOUR);
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(sealer.open(PURPOSE, &token).unwrap(), payload);
    assert_eq!(
        sealer.open(PURPOSE, &token).unwrap(),
        payload,
        "open is repeatable"
    );
    let empty = sealer.seal(PURPOSE, b"", HOUR);
    assert_eq!(sealer.open(PURPOSE, &empty).unwrap(), b"");
    // Same payload, fresh nonce: different tokens.
    assert_ne!(token, sealer.seal(PURPOSE, payload, HOUR));
    // A second sealer with the same key opens it (several instances).
    assert_eq!(super_sealer_open(&token), payload);
}

fn super_sealer_open(token: &str) -> Vec<u8> {
    sealer().open(PURPOSE, token).unwrap()
}

#[test]
fn seal_every_single_character_change_is_refused() {
    let sealer = sealer();
    let token = sealer.seal(PURPOSE, br#"{"page":2}"#, HOUR);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.";
    let mut tried = 0;
    for i in 0..token.len() {
        for &c in alphabet {
            let mut bytes = token.clone().into_bytes();
            if bytes[i] == c {
                continue;
            }
            bytes[i] = c;
            let forged = String::from_utf8(bytes).unwrap();
            match sealer.open(PURPOSE, &forged) {
                Err(SealError::BadSignature | SealError::Malformed { .. }) => {}
                other => panic!("position {i} -> {:?}: {other:?}", c as char),
            }
            tried += 1;
        }
    }
    assert!(tried > 60 * token.len());
}

#[test]
fn seal_every_bit_flip_of_the_raw_token_is_a_bad_signature() {
    let sealer = sealer();
    let token = sealer.seal(PURPOSE, br#"{"page":2}"#, HOUR);
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut forged = raw.clone();
            forged[i] ^= 1 << bit;
            let forged = URL_SAFE_NO_PAD.encode(forged);
            assert_eq!(
                sealer.open(PURPOSE, &forged),
                Err(SealError::BadSignature),
                "byte {i} bit {bit}"
            );
        }
    }
    // Truncated or extended tokens never open.
    for len in 0..raw.len() {
        let cut = URL_SAFE_NO_PAD.encode(&raw[..len]);
        assert!(
            matches!(
                sealer.open(PURPOSE, &cut),
                Err(SealError::BadSignature | SealError::Malformed { .. })
            ),
            "cut at {len}"
        );
    }
    let mut longer = raw.clone();
    longer.push(0);
    assert_eq!(
        sealer.open(PURPOSE, &URL_SAFE_NO_PAD.encode(longer)),
        Err(SealError::BadSignature)
    );
}

#[test]
fn seal_refuses_garbage_as_malformed() {
    let sealer = sealer();
    for garbage in ["", "!!!!", "abc", "a", "AAAA====", "ab+/cd", "\u{e9}\u{e9}"] {
        assert!(
            matches!(
                sealer.open(PURPOSE, garbage),
                Err(SealError::Malformed { .. })
            ),
            "{garbage:?}"
        );
    }
}

#[test]
fn seal_wrong_purpose_or_key_is_a_bad_signature() {
    let sealer = sealer();
    let token = sealer.seal(PURPOSE, b"x", HOUR);
    assert_eq!(
        sealer.open("requestState", &token),
        Err(SealError::BadSignature)
    );
    assert_eq!(sealer.open("", &token), Err(SealError::BadSignature));
    assert_eq!(
        sealer.open("cursor\0", &token),
        Err(SealError::BadSignature)
    );
    assert_eq!(sealer.open("cursoR", &token), Err(SealError::BadSignature));
    let other = Sealer::new(SealKey::from_bytes([8; 32]));
    assert_eq!(other.open(PURPOSE, &token), Err(SealError::BadSignature));
    let random = Sealer::new(SealKey::generate());
    assert_eq!(random.open(PURPOSE, &token), Err(SealError::BadSignature));
    // Random keys differ.
    assert_ne!(SealKey::generate(), SealKey::generate());
}

#[test]
fn seal_expiry_is_exact() {
    let (now, clock) = manual_clock(1_000_000);
    let sealer = sealer().with_clock(clock);
    let token = sealer.seal(PURPOSE, b"x", Duration::from_millis(500));
    now.store(1_000_499, Ordering::SeqCst);
    assert_eq!(sealer.open(PURPOSE, &token).unwrap(), b"x");
    now.store(1_000_500, Ordering::SeqCst);
    assert_eq!(
        sealer.open(PURPOSE, &token),
        Err(SealError::Expired {
            expired_at_unix_ms: 1_000_500
        })
    );
    // A zero ttl is expired at once, with the real clock too.
    let real = self::sealer();
    let token = real.seal(PURPOSE, b"x", Duration::ZERO);
    assert!(matches!(
        real.open(PURPOSE, &token),
        Err(SealError::Expired { .. })
    ));
}

#[test]
fn seal_open_once_refuses_replay() {
    let sealer = sealer();
    let token = sealer.seal(PURPOSE, b"state", HOUR);
    assert_eq!(sealer.open_once(PURPOSE, &token).unwrap(), b"state");
    assert_eq!(sealer.open_once(PURPOSE, &token), Err(SealError::Replayed));
    assert_eq!(sealer.open_once(PURPOSE, &token), Err(SealError::Replayed));
    // Another token is fresh.
    let second = sealer.seal(PURPOSE, b"state", HOUR);
    assert_eq!(sealer.open_once(PURPOSE, &second).unwrap(), b"state");
    // A refused token is not remembered.
    let third = sealer.seal(PURPOSE, b"s", HOUR);
    assert_eq!(
        sealer.open_once("other", &third),
        Err(SealError::BadSignature)
    );
    assert_eq!(sealer.open_once(PURPOSE, &third).unwrap(), b"s");
}

#[test]
fn seal_open_once_from_many_threads_accepts_one() {
    let sealer = Arc::new(sealer());
    let token = Arc::new(sealer.seal(PURPOSE, b"x", HOUR));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (sealer, token) = (sealer.clone(), token.clone());
            std::thread::spawn(move || sealer.open_once(PURPOSE, &token))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|r| r.is_ok() || *r == Err(SealError::Replayed)));
}

#[test]
fn seal_replay_cache_is_bounded_and_forgets_only_expired() {
    let (now, clock) = manual_clock(10_000);
    let sealer = sealer().with_clock(clock).with_replay_capacity(2);
    let a = sealer.seal(PURPOSE, b"a", Duration::from_millis(100));
    let b = sealer.seal(PURPOSE, b"b", Duration::from_millis(1_000));
    let c = sealer.seal(PURPOSE, b"c", Duration::from_millis(1_000));
    assert!(sealer.open_once(PURPOSE, &a).is_ok());
    assert!(sealer.open_once(PURPOSE, &b).is_ok());
    // Full of unexpired nonces: refuse rather than forget.
    assert_eq!(
        sealer.open_once(PURPOSE, &c),
        Err(SealError::ReplayCacheFull { capacity: 2 })
    );
    assert_eq!(sealer.open_once(PURPOSE, &a), Err(SealError::Replayed));
    // Once `a` expires its slot is freed, and `a` still cannot come back.
    now.store(10_100, Ordering::SeqCst);
    assert!(matches!(
        sealer.open_once(PURPOSE, &a),
        Err(SealError::Expired { .. })
    ));
    assert_eq!(sealer.open_once(PURPOSE, &c).unwrap(), b"c");
    assert_eq!(sealer.open_once(PURPOSE, &b), Err(SealError::Replayed));
    assert_eq!(sealer.open_once(PURPOSE, &c), Err(SealError::Replayed));
}

#[test]
fn seal_clock_stepping_back_does_not_revive_forgotten_nonces() {
    let (now, clock) = manual_clock(50_000);
    let sealer = sealer().with_clock(clock).with_replay_capacity(10);
    let token = sealer.seal(PURPOSE, b"x", Duration::from_millis(100));
    assert!(sealer.open_once(PURPOSE, &token).is_ok());
    // Time passes: the nonce is forgotten when another token comes in.
    now.store(60_000, Ordering::SeqCst);
    let later = sealer.seal(PURPOSE, b"y", HOUR);
    assert!(sealer.open_once(PURPOSE, &later).is_ok());
    // The clock steps back into the first token's lifetime.
    now.store(50_050, Ordering::SeqCst);
    assert!(matches!(
        sealer.open_once(PURPOSE, &token),
        Err(SealError::Expired { .. })
    ));
}

#[test]
fn seal_token_length_limit() {
    let sealer = sealer();
    let token = sealer.seal(PURPOSE, &[b'x'; 100], HOUR);
    let exact = self::sealer().with_max_token_len(token.len());
    assert!(exact.open(PURPOSE, &token).is_ok());
    let short = self::sealer().with_max_token_len(token.len() - 1);
    assert!(matches!(
        short.open(PURPOSE, &token),
        Err(SealError::Malformed { .. })
    ));
    assert!(matches!(
        short.open_once(PURPOSE, &token),
        Err(SealError::Malformed { .. })
    ));

    // Over the default limit: refused before decoding (the text is not base64).
    let huge = "!".repeat(DEFAULT_MAX_TOKEN_LEN + 1);
    match sealer.open(PURPOSE, &huge) {
        Err(SealError::Malformed { reason }) => assert!(reason.contains("16384"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let at_limit = "!".repeat(DEFAULT_MAX_TOKEN_LEN);
    match sealer.open(PURPOSE, &at_limit) {
        Err(SealError::Malformed { reason }) => assert!(!reason.contains("16384"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn seal_key_debug_hides_bytes() {
    let key = SealKey::from_bytes([0xAB; 32]);
    assert_eq!(key.as_bytes(), &[0xAB; 32]);
    let shown = format!("{key:?} {:?}", Sealer::new(key.clone()));
    assert!(
        !shown.contains("171") && !shown.to_lowercase().contains("ab, "),
        "{shown}"
    );
}
