//! Odd XML for property tests: documents that are well-formed but not what a reader expects
//! (unknown elements, names and attributes of any length, entity and character references,
//! CDATA, comments and processing instructions, namespaces bound, rebound or undeclared, deep
//! nesting, a DOCTYPE with its own entities), documents broken in small ways, and mutations of
//! recorded payloads. Shared by the property tests of `espbridge-xml` and of each XML or SOAP
//! adapter (included with `#[path]`), so every one of them is fed the same kinds of input.

#![allow(dead_code)]

use proptest::collection::vec;
use proptest::prelude::*;

/// An element tree to write out; text and names are written as given (escaped or not).
#[derive(Debug, Clone)]
pub enum XNode {
    Elem {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<XNode>,
    },
    /// Raw bytes between tags (may hold references, CDATA, comments or invalid UTF-8).
    Raw(Vec<u8>),
    /// `depth` nested `<w>` elements around `inner`.
    Deep(usize, Box<XNode>),
}

/// An element.
pub fn el(name: &str, attrs: &[(&str, &str)], children: Vec<XNode>) -> XNode {
    XNode::Elem {
        name: name.to_owned(),
        attrs: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        children,
    }
}

/// An element holding text (escaped here).
pub fn leaf(name: &str, text: &str) -> XNode {
    el(name, &[], vec![XNode::Raw(escape(text).into_bytes())])
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl XNode {
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            XNode::Elem {
                name,
                attrs,
                children,
            } => {
                out.push(b'<');
                out.extend_from_slice(name.as_bytes());
                for (k, v) in attrs {
                    out.push(b' ');
                    out.extend_from_slice(k.as_bytes());
                    out.extend_from_slice(b"=\"");
                    out.extend_from_slice(v.as_bytes());
                    out.push(b'"');
                }
                if children.is_empty() {
                    out.extend_from_slice(b"/>");
                    return;
                }
                out.push(b'>');
                for c in children {
                    c.write(out);
                }
                out.extend_from_slice(b"</");
                out.extend_from_slice(name.as_bytes());
                out.push(b'>');
            }
            XNode::Raw(b) => out.extend_from_slice(b),
            XNode::Deep(depth, inner) => {
                out.extend(b"<w>".repeat(*depth));
                inner.write(out);
                out.extend(b"</w>".repeat(*depth));
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

/// Namespace URIs the adapters check, and others.
pub const NAMESPACES: &[&str] = &[
    "http://schemas.xmlsoap.org/soap/envelope/",
    "http://api.bronto.com/v4",
    "http://api.service.apibatchmember.emailvision.com/",
    "urn:other",
    "",
];

/// Element names: from `vocab` mostly, sometimes prefixed, sometimes made up or very long.
pub fn name(vocab: &'static [&'static str]) -> impl Strategy<Value = String> {
    let known = prop::sample::select(vocab).prop_map(str::to_owned);
    let prefix = prop::sample::select(vec!["soap:", "soapenv:", "ns2:", "v4:", "x:", "S:"]);
    prop_oneof![
        12 => known.clone(),
        3 => (prefix, known).prop_map(|(p, n)| format!("{p}{n}")),
        2 => "[A-Za-z_][A-Za-z0-9_.-]{0,12}",
        1 => "[a-z]{1,3}:[a-z]{1,3}",
        1 => (1usize..20_000).prop_map(|n| "n".repeat(n)),
    ]
}

/// Attribute values: short, escaped, with references, or huge (and, unless `clean`, sometimes a
/// reference the reader refuses).
fn attr_value(clean: bool) -> BoxedStrategy<String> {
    let good = prop_oneof![
        12 => prop::sample::select(vec![
            "failed", "success", "1", "true", "TRUE", "0", "", "x", "&amp;", "&lt;&gt;", "&#65;",
            "&#x10FFFF;", "a\tb\nc", "'", "&quot;",
        ]).prop_map(str::to_owned),
        4 => prop::sample::select(NAMESPACES).prop_map(str::to_owned),
        2 => "[ -~&&[^\"&<]]{0,40}",
        2 => (1usize..100_000).prop_map(|n| "v".repeat(n)),
    ];
    if clean {
        return good.boxed();
    }
    let bad =
        prop::sample::select(vec!["&#0;", "&#xD800;", "&bogus;", "&", "<"]).prop_map(str::to_owned);
    prop_oneof![20 => good, 1 => bad].boxed()
}

fn attr(names: &'static [&'static str], clean: bool) -> impl Strategy<Value = (String, String)> {
    let key = prop_oneof![
        4 => prop::sample::select(names).prop_map(str::to_owned),
        2 => prop::sample::select(vec!["xmlns", "xmlns:soap", "xmlns:soapenv", "xmlns:ns2", "xmlns:v4", "xmlns:x", "xml:lang", "xsi:nil"])
            .prop_map(str::to_owned),
        1 => "[a-z]{1,8}",
        1 => (1usize..5_000).prop_map(|n| "a".repeat(n)),
    ];
    (key, attr_value(clean))
}

/// Text between tags: values a reader parses, references of every kind, CDATA, comments,
/// processing instructions, huge runs; now and then something the reader refuses.
pub fn text(texts: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![20 => good_text(texts), 1 => bad_text()]
}

/// [`text`] that a reader accepts.
pub fn good_text(texts: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        40 => prop::sample::select(texts).prop_map(|t| escape(t).into_bytes()),
        12 => prop::sample::select(vec![
            "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#65;", "&#x41;", "&#x10FFFF;",
            "<!-- c -->", "<!---->", "<?pi data?>", "<![CDATA[x < y & z]]>", "<![CDATA[]]>",
            " \t\r\n ", "\r", "\u{feff}", "é", "😀",
        ]).prop_map(|t| t.as_bytes().to_vec()),
        4 => "[ -~&&[^<&]]{0,40}".prop_map(String::into_bytes),
        2 => (1usize..100_000).prop_map(|n| "t".repeat(n).into_bytes()),
        1 => (1usize..5_000).prop_map(|n| "&amp;".repeat(n).into_bytes()),
    ]
}

/// Text a reader refuses: bad references and markup, bytes that are not UTF-8, huge unknown
/// entities and character references.
pub fn bad_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "&#0;", "&#xD800;", "&#1114112;", "&#99999999999;", "&#x;", "&#;", "&;", "&nbsp;",
            "&e;", "&unknown;", "&", "<", "]]>", "<?xml version=\"1.0\"?>", "<![CDATA[", "\u{0}",
        ]).prop_map(|t| t.as_bytes().to_vec()),
        2 => vec(any::<u8>(), 0..24).prop_map(|b| {
            let mut out = b"<![CDATA[".to_vec();
            out.extend(b.into_iter().filter(|&c| c != b']'));
            out.extend_from_slice(b"]]>");
            out
        }),
        1 => (1usize..20_000).prop_map(|n| format!("&{};", "e".repeat(n)).into_bytes()),
        1 => (1usize..20_000).prop_map(|n| format!("&#{};", "9".repeat(n)).into_bytes()),
    ]
}

/// A random subtree: names from `vocab`, attributes from `attrs`, text from `texts`; now and then
/// a deep chain of elements (up to 1,000 levels: deeper ones are the subject of
/// `espbridge-xml`'s own deep-nesting test), and something the reader refuses.
pub fn tree(
    vocab: &'static [&'static str],
    attrs: &'static [&'static str],
    texts: &'static [&'static str],
) -> impl Strategy<Value = XNode> {
    tree_sized(vocab, attrs, texts, 6, 64, false)
}

/// [`tree`] at most `depth` levels deep (deep chains aside) with about `size` nodes; `clean`
/// leaves out what the reader refuses (so that a document around it is read through).
pub fn tree_sized(
    vocab: &'static [&'static str],
    attrs: &'static [&'static str],
    texts: &'static [&'static str],
    depth: u32,
    size: u32,
    clean: bool,
) -> BoxedStrategy<XNode> {
    let content = move || {
        if clean {
            good_text(texts).boxed()
        } else {
            text(texts).boxed()
        }
    };
    let good_leaf = prop_oneof![
        30 => content().prop_map(XNode::Raw),
        30 => (name(vocab), content()).prop_map(|(n, t)| XNode::Elem {
            name: n,
            attrs: Vec::new(),
            children: vec![XNode::Raw(t)],
        }),
        10 => (name(vocab), vec(attr(attrs, clean), 0..3)).prop_map(|(n, a)| XNode::Elem {
            name: n,
            attrs: a,
            children: Vec::new(),
        }),
    ];
    let leaf_node = if clean {
        good_leaf.boxed()
    } else {
        prop_oneof![
            70 => good_leaf,
            // Ill-formed on purpose: a close tag of another name, an attribute given twice.
            1 => (name(vocab), name(vocab)).prop_map(|(a, b)| XNode::Raw(format!("<{a}></{b}>").into_bytes())),
            1 => (name(vocab), attr(attrs, clean)).prop_map(|(n, (k, v))| {
                XNode::Raw(format!("<{n} {k}=\"{v}\" {k}=\"{v}\"/>").into_bytes())
            }),
        ]
        .boxed()
    };
    leaf_node
        .prop_recursive(depth, size, 8, move |inner| {
            prop_oneof![
                8 => (name(vocab), vec(attr(attrs, clean), 0..3), vec(inner.clone(), 0..8)).prop_map(
                    |(n, a, c)| XNode::Elem { name: n, attrs: a, children: c }
                ),
                1 => (1usize..1_000, inner).prop_map(|(d, i)| XNode::Deep(d, Box::new(i))),
            ]
        })
        .boxed()
}

/// Small breakages and oddities around a document: an XML declaration or not, a byte-order mark,
/// a DOCTYPE declaring entities (never expanded), trailing content, and sometimes a cut, a
/// flipped byte or a spliced snippet.
pub fn document(root: impl Strategy<Value = XNode>) -> impl Strategy<Value = Vec<u8>> {
    let prolog = prop::sample::select(vec![
        &b""[..],
        &b""[..],
        &b""[..],
        &b""[..],
        &b""[..],
        &b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"[..],
        &b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"[..],
        &b"<?xml version=\"1.1\" encoding=\"ISO-8859-1\"?>\n"[..],
        &b"\xEF\xBB\xBF<?xml version=\"1.0\"?>"[..],
        &b"\xFF\xFE<\x00"[..],
        &b"<!DOCTYPE r [<!ENTITY e \"x\"><!ENTITY l \"&e;&e;&e;&e;\">]>"[..],
        &b"<!DOCTYPE r SYSTEM \"file:///etc/passwd\">"[..],
        &b"<!-- before -->\n"[..],
    ]);
    let trailing = prop::sample::select(vec![
        &b""[..],
        &b""[..],
        &b"\n"[..],
        &b"<extra/>"[..],
        &b"</extra>"[..],
        &b"garbage"[..],
        &b"<!-- after -->"[..],
    ]);
    let damage = prop_oneof![
        15 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Cut),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Flip(i, b)),
        1 => (any::<prop::sample::Index>(), text(&["x"])).prop_map(|(i, s)| Damage::Splice(i, s)),
    ];
    (prolog, root, trailing, damage).prop_map(|(prolog, root, trailing, damage)| {
        let mut out = prolog.to_vec();
        root.write(&mut out);
        out.extend_from_slice(trailing);
        damage.apply(&mut out);
        out
    })
}

#[derive(Debug, Clone)]
pub enum Damage {
    None,
    Cut(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Splice(prop::sample::Index, Vec<u8>),
}

impl Damage {
    pub fn apply(&self, doc: &mut Vec<u8>) {
        match self {
            Damage::None => {}
            Damage::Cut(i) => doc.truncate(i.index(doc.len() + 1)),
            Damage::Flip(i, b) if !doc.is_empty() => {
                let at = i.index(doc.len());
                doc[at] = *b;
            }
            Damage::Flip(..) => {}
            Damage::Splice(i, s) => {
                let at = i.index(doc.len() + 1);
                doc.splice(at..at, s.iter().copied());
            }
        }
    }
}

/// A recorded payload changed in a few places (cut, flipped, spliced with odd text).
pub fn mutated(payloads: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let damage = prop_oneof![
        1 => any::<prop::sample::Index>().prop_map(Damage::Cut),
        2 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Flip(i, b)),
        4 => (any::<prop::sample::Index>(), text(&["x", "0", "true", "failed"])).prop_map(|(i, s)| Damage::Splice(i, s)),
    ];
    (prop::sample::select(payloads), vec(damage, 1..4)).prop_map(|(mut doc, damages)| {
        for d in &damages {
            d.apply(&mut doc);
        }
        doc
    })
}

/// Every `.xml` file of a fixtures folder.
pub fn fixtures(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("fixtures at {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no .xml fixtures in {}", dir.display());
    out
}

/// Cases per property: `default`, or `PROPTEST_CASES` when set.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Longest error text an answer may give (1 KiB).
pub const ERROR_MAX: usize = 1024;

/// Fails the case when an error text is longer than [`ERROR_MAX`]; the message shows its start.
pub fn bounded_error(text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        text.len() <= ERROR_MAX,
        "{} bytes: {}",
        text.len(),
        text.chars().take(200).collect::<String>()
    );
    Ok(())
}
