//! Every Bronto fixture read by the adapter's wire code; builders compared with the recorded
//! requests (as parsed trees); the WSDL checked for every operation the adapter calls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_bronto::metrics;
use espbridge_bronto::wire::{
    self, Delivery, DeliveryField, Element, ListRef, MailList, Message, MessageFolder, NS,
    NewDelivery, Node, ReadObject, Recipient, Response, parse, parse_response,
};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `<op>Response` of a response fixture.
fn response(name: &str, op: &str) -> Element {
    match parse_response(&fixture(name), op).unwrap_or_else(|e| panic!("{name}: {e}")) {
        Response::Ok(r) => r,
        Response::Fault(f) => panic!("{name}: {f:?}"),
    }
}

/// The `<op>Response` of a constructed answer holding `inner`.
fn constructed(op: &str, inner: &str) -> Element {
    let body = format!(
        r#"<soap:Envelope xmlns:soap="{}"><soap:Body><ns2:{op}Response xmlns:ns2="{NS}">{inner}</ns2:{op}Response></soap:Body></soap:Envelope>"#,
        wire::SOAP_NS
    );
    match parse_response(body.as_bytes(), op).unwrap() {
        Response::Ok(r) => r,
        Response::Fault(f) => panic!("{f:?}"),
    }
}

/// The operation wrapper of a request document.
fn operation(doc: &Element) -> &Element {
    &doc.child("Body").expect("Body").children[0]
}

/// Same names, namespaces, texts and child order, recursively (attributes and prefixes aside).
fn assert_same_tree(a: &Element, b: &Element, path: &str) {
    let here = format!("{path}/{}", a.name);
    assert_eq!(a.name, b.name, "{here}");
    assert_eq!(a.namespace, b.namespace, "{here}");
    assert_eq!(a.text, b.text, "{here}");
    let names = |e: &Element| {
        e.children
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(a), names(b), "{here}");
    for (x, y) in a.children.iter().zip(&b.children) {
        assert_same_tree(x, y, &here);
    }
}

/// Builds the envelope the adapter would send (with the recorded session, if any) and compares
/// it with the recorded request.
fn assert_builds(name: &str, op: Node) {
    let recorded = parse(&fixture(name)).unwrap();
    let session = recorded
        .child("Header")
        .and_then(|h| h.child("sessionHeader"))
        .and_then(|s| s.child_text("sessionId"));
    let built = parse(&wire::envelope(session, op).unwrap()).unwrap();
    assert_same_tree(&built, &recorded, name);
}

fn all_fixtures(suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

#[test]
fn every_request_fixture_is_a_v4_request() {
    let requests: Vec<_> = all_fixtures(".xml")
        .into_iter()
        .filter(|n| n.contains(".request"))
        .collect();
    assert_eq!(requests.len(), 10, "{requests:?}");
    for name in requests {
        let doc = parse(&fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.name, "Envelope", "{name}");
        assert_eq!(doc.namespace.as_deref(), Some(wire::SOAP_NS), "{name}");
        let op = operation(&doc);
        assert_eq!(op.namespace.as_deref(), Some(NS), "{name}");
        assert_eq!(Some(op.name.as_str()), name.split('.').next(), "{name}");
        assert!(!op.children.is_empty() || op.name == "readLists", "{name}");
        for c in &op.children {
            assert_eq!(c.namespace, None, "{name}: <{}> is qualified", c.name);
        }
        if op.name != "login" {
            let sh = doc.child("Header").and_then(|h| h.child("sessionHeader"));
            assert_eq!(sh.and_then(|s| s.namespace.as_deref()), Some(NS), "{name}");
        }
    }
}

#[test]
fn every_response_fixture_is_parsed() {
    let responses = all_fixtures(".xml")
        .into_iter()
        .filter(|n| n.contains(".response"))
        .collect::<Vec<_>>();
    assert_eq!(responses.len(), 8, "{responses:?}");
    for name in &responses {
        let op = name.split('.').next().unwrap();
        response(name, op);
    }
}

#[test]
fn login_builds_the_recorded_request_and_reads_the_session() {
    assert_builds("login.request.xml", wire::login("BRONTO_API_KEY"));
    let r = response("login.response.xml", "login");
    assert_eq!(
        wire::session_id(&r),
        Some("f778bf49-d061-4dff-b692-de9489687c95")
    );
}

#[test]
fn read_messages_by_name() {
    let name = "readMessages.request_filter_name.xml";
    assert_builds(
        name,
        wire::read_messages(
            vec![wire::criterion("name", "EqualTo", "Wombat First Message")],
            false,
            1,
        ),
    );
    let m = Message::list(&response("readMessages.response.xml", "readMessages"));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].id, "0bcc03eb00000000000000000000001b528a");
    assert_eq!(m[0].name, "Wombat First Message");
    assert_eq!(m[0].status.as_deref(), Some("active"));
    assert!(m[0].content.is_empty() && m[0].subject().is_none());
}

#[test]
fn only_active_messages_are_sendable() {
    // The recorded answer's message is active (reference B.7.1).
    let recorded = Message::list(&response("readMessages.response.xml", "readMessages"));
    assert!(recorded[0].is_active());
    // The other message statuses of reference B.6 (`tmp`: a draft; `delete`), an unlisted one
    // and none, in the recorded answer's shape (no recorded sample has them).
    let r = constructed(
        "readMessages",
        "<return><id>M1</id><name>Live</name><status>active</status></return>\
         <return><id>M2</id><name>Draft</name><status>tmp</status></return>\
         <return><id>M3</id><name>Deleted</name><status>delete</status></return>\
         <return><id>M4</id><name>Odd</name><status>Active</status></return>\
         <return><id>M5</id><name>Bare</name></return>",
    );
    let active: Vec<String> = Message::list(&r)
        .into_iter()
        .filter(Message::is_active)
        .map(|m| m.id)
        .collect();
    assert_eq!(active, ["M1"]);
}

#[test]
fn read_lists_with_an_empty_filter() {
    let name = "readLists.request_empty_filter.xml";
    assert_builds(name, wire::read_lists(vec![], None));
    let l = MailList::list(&response("readLists.response.xml", "readLists"));
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].id, "0bcc03ec000000000000000000000005b520");
    assert_eq!(l[0].name, "wombat");
    assert_eq!(l[0].label.as_deref(), Some("Wombat"));
    assert_eq!(l[0].active_count, Some(1));
    assert_eq!(l[1].name, "spree");
}

#[test]
fn add_to_list_by_name_and_its_result() {
    let name = "addToList.request_list_by_name.xml";
    assert_builds(
        name,
        wire::add_to_list(ListRef::Name("wombat"), ["wombat@spreecommerce.com"]),
    );
    let items = wire::write_results(&response("addToList.response.xml", "addToList"));
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].index, 0);
    assert!(!items[0].is_error() && !items[0].is_new);
    assert_eq!(
        items[0].id.as_deref(),
        Some("0bcc03ec000000000000000000000005b520"),
        "addToList's result id is the list id"
    );
    let removed = wire::write_results(&response("removeFromList.response.xml", "removeFromList"));
    assert_eq!(removed[0].id, items[0].id);
    assert_eq!(removed[0].error_code, 0);
}

#[test]
fn add_deliveries_builds_the_recorded_request() {
    let name = "addDeliveries.request_transactional_single_contact.xml";
    let d = NewDelivery {
        start: "2014-08-27T23:42:54-03:00".into(),
        message_id: "0bcc03eb00000000000000000000001b528a".into(),
        kind: "transactional".into(),
        from_email: "dontreply@spreecommerce.com".into(),
        from_name: "Spree Commerce".into(),
        reply_email: Some("dontreply@spreecommerce.com".into()),
        recipients: vec![Recipient {
            kind: "contact".into(),
            id: "ac41a110-bd21-4bf6-b061-625dfa428a27".into(),
            delivery_type: None,
        }],
        fields: vec![DeliveryField {
            name: "username".into(),
            kind: "html".into(),
            content: "Washington L".into(),
        }],
    };
    assert_builds(name, wire::add_deliveries(&d));
}

#[test]
fn contacts_and_fields_responses() {
    let r = response("readContacts.response.xml", "readContacts");
    let contacts = wire::returns(&r);
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].child_text("status"), Some("onboarding"));
    assert_eq!(
        contacts[0].child_text("id"),
        Some("ac41a110-bd21-4bf6-b061-625dfa428a27")
    );
    let r = response(
        "addOrUpdateContacts.response_new.xml",
        "addOrUpdateContacts",
    );
    let items = wire::write_results(&r);
    assert!(items[0].is_new && !items[0].is_error());
    let r = response("readFields.response.xml", "readFields");
    assert_eq!(wire::returns(&r)[0].child_text("name"), Some("lastname"));
    let nil = parse(&fixture(
        "addOrUpdateContacts.request_with_fields_and_nil.xml",
    ))
    .unwrap();
    let contact = &operation(&nil).children[0];
    assert_eq!(
        contact.child("mobileNumber").unwrap().attr("nil"),
        Some("true")
    );
}

#[test]
fn constructed_folder_and_delivery_responses() {
    // Shapes of reference B.7.1 and B.7.4 (no recorded samples exist).
    let r = constructed(
        "readMessageFolders",
        "<return><id>F1</id><name>Optimove</name><parentId>F0</parentId><parentName>Messages</parentName></return>",
    );
    let f = MessageFolder::list(&r);
    assert_eq!((f[0].id.as_str(), f[0].name.as_str()), ("F1", "Optimove"));
    assert_eq!(f[0].parent_id.as_deref(), Some("F0"));

    let r = constructed(
        "readDeliveries",
        "<return><id>D1</id><start>2024-06-15T09:30:00Z</start><messageId>M1</messageId><status>sent</status><type>triggered</type><fromEmail>news@brand.example</fromEmail><fromName>Brand</fromName><replyEmail>reply@brand.example</replyEmail><recipients><deliveryType>selected</deliveryType><id>L1</id><type>list</type></recipients><recipients><deliveryType>ineligible</deliveryType><id>L2</id><type>list</type></recipients><numSends>48211</numSends><numDeliveries>47775</numDeliveries><numHardBounces>96</numHardBounces><numSoftBounces>340</numSoftBounces><numBounces>436</numBounces><uniqOpens>9120</uniqOpens><numOpens>15874</numOpens><avgOpens>1.74</avgOpens><uniqClicks>1402</uniqClicks><numClicks>2210</numClicks><numUnsubscribesByPrefs>51</numUnsubscribesByPrefs><numUnsubscribesByComplaint>7</numUnsubscribesByComplaint></return><return><id>D2</id><status>unsent</status></return>",
    );
    let d = Delivery::list(&r);
    assert_eq!(d.len(), 2);
    assert!(d[0].selects_list("L1"));
    assert!(
        !d[0].selects_list("L2"),
        "an exclusion list is not the audience"
    );
    assert_eq!(d[0].reply_email.as_deref(), Some("reply@brand.example"));
    let m = metrics(d[0].counts.unwrap());
    assert_eq!((m.sent, m.delivered, m.bounces), (48211, 47775, 436));
    assert_eq!((m.opens, m.clicks), (9120, 1402));
    assert_eq!((m.unsubscribes, m.complaints), (58, 7));
    assert_eq!(d[1].counts, None);
}

#[test]
fn the_fault_of_the_reference_is_read() {
    let body = format!(
        r#"<soap:Envelope xmlns:soap="{}"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>103: Your session is invalid. Please log in again.</faultstring><detail><ns2:ApiException xmlns:ns2="{NS}"><errorCode>103</errorCode></ns2:ApiException></detail></soap:Fault></soap:Body></soap:Envelope>"#,
        wire::SOAP_NS
    );
    let Response::Fault(f) = parse_response(body.as_bytes(), "readLists").unwrap() else {
        panic!("not a fault")
    };
    assert_eq!(f.code, Some(103));
    // The detail wins over the faultstring.
    let body = body.replace("<errorCode>103", "<errorCode>116");
    let Response::Fault(f) = parse_response(body.as_bytes(), "readLists").unwrap() else {
        panic!("not a fault")
    };
    assert_eq!(f.code, Some(116));
}

/// The element names a built operation sends at its top level and inside its first child.
fn child_names(op: &Node) -> (String, Vec<String>, Vec<String>) {
    let env = parse(&wire::envelope(None, op.clone()).unwrap()).unwrap();
    let doc = operation(&env).clone();
    let top = doc.children.iter().map(|c| c.name.clone()).collect();
    let inner = doc
        .children
        .iter()
        .find(|c| !c.children.is_empty())
        .map(|c| c.children.iter().map(|g| g.name.clone()).collect())
        .unwrap_or_default();
    (doc.name, top, inner)
}

/// The element names of the WSDL's complexType `name`.
fn wsdl_fields<'a>(types: &'a [&'a Element], name: &str) -> Vec<&'a str> {
    fn collect<'b>(e: &'b Element, out: &mut Vec<&'b str>) {
        for c in &e.children {
            if c.name == "element"
                && let Some(n) = c.attr("name")
            {
                out.push(n);
            }
            collect(c, out);
        }
    }
    let ty = types
        .iter()
        .find(|t| t.attr("name") == Some(name))
        .unwrap_or_else(|| panic!("no complexType {name}"));
    let mut out = Vec::new();
    collect(ty, &mut out);
    out
}

#[test]
fn the_wsdl_declares_every_operation_and_element_sent() {
    let wsdl = parse(&fixture("bronto-v4.wsdl")).unwrap();
    assert_eq!(wsdl.attr("targetNamespace"), Some(NS));
    let port_ops: Vec<&str> = wsdl
        .children_named("portType")
        .flat_map(|p| p.children_named("operation"))
        .filter_map(|o| o.attr("name"))
        .collect();
    fn all_named<'a>(e: &'a Element, name: &str, out: &mut Vec<&'a Element>) {
        for c in &e.children {
            if c.name == name {
                out.push(c);
            }
            all_named(c, name, out);
        }
    }
    let mut types = Vec::new();
    all_named(&wsdl, "complexType", &mut types);
    let delivery = NewDelivery {
        start: "2026-06-15T09:30:00+00:00".into(),
        message_id: "M".into(),
        kind: "triggered".into(),
        from_email: "a@b.example".into(),
        from_name: "B".into(),
        reply_email: Some("r@b.example".into()),
        recipients: vec![Recipient {
            kind: "list".into(),
            id: "L".into(),
            delivery_type: Some("selected".into()),
        }],
        fields: vec![],
    };
    let built = [
        (wire::login("t"), None),
        (
            wire::read_message_folders(vec![wire::criterion("name", "EqualTo", "x")], 1),
            Some("messageFolderFilter"),
        ),
        (
            wire::read_messages(vec![wire::id_criterion("messageFolderId", "F")], false, 1),
            Some("messageFilter"),
        ),
        (wire::add_lists("n", "l"), Some("mailListObject")),
        (
            wire::read_lists(vec![wire::criterion("name", "EqualTo", "n")], Some(1)),
            Some("mailListFilter"),
        ),
        (
            wire::add_to_list(ListRef::Id("L"), ["a@b.example"]),
            Some("mailListObject"),
        ),
        (wire::delete_lists(["L"]), Some("mailListObject")),
        (wire::add_deliveries(&delivery), Some("deliveryObject")),
        (
            wire::read_deliveries(
                vec![
                    wire::id_criterion("messageId", "M"),
                    wire::criterion("start", "SameDay", "x"),
                ],
                true,
                1,
            ),
            Some("deliveryFilter"),
        ),
    ];
    for (op, inner_type) in built {
        let (name, top, inner) = child_names(&op);
        assert!(
            port_ops.contains(&name.as_str()),
            "WSDL lacks operation {name}"
        );
        let declared = wsdl_fields(&types, &name);
        for t in &top {
            assert!(declared.contains(&t.as_str()), "{name} has no <{t}>");
        }
        if let Some(ty) = inner_type {
            let declared = wsdl_fields(&types, ty);
            for i in &inner {
                assert!(declared.contains(&i.as_str()), "{ty} has no <{i}>");
            }
        }
    }
    let recipient = wsdl_fields(&types, "deliveryRecipientObject");
    assert_eq!(
        recipient,
        ["deliveryType", "id", "type"],
        "the order add_deliveries writes"
    );
}
