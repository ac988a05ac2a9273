//! Every Silverpop fixture read by the adapter's wire types.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_silverpop::metrics;
use espbridge_silverpop::wire::{
    self, AggregateTracking, Answer, JobStatus, ListRow, LoginResult, MailingTemplate, RowFailure,
    SentMailing, list_size, read_answer,
};
use espbridge_silverpop::xml::{envelope, parse};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn success(name: &str) -> espbridge_silverpop::xml::Element {
    match read_answer(&fixture(name)).unwrap() {
        Answer::Success(r) => r,
        Answer::Failed(f) => panic!("{name}: {f:?}"),
    }
}

#[test]
fn login_gives_the_session_id() {
    let r = success("Login.response.xml");
    assert_eq!(
        LoginResult::from_result(&r).unwrap().session_id,
        "8C269563FE07A0118118FD6BF6C7920C"
    );
}

#[test]
fn faults_are_read_beside_result() {
    for (name, id, class, text) in [
        ("Login.fault_errorid_50.xml", 50, "SP.API", "Server Error"),
        (
            "Fault.session_expired_errorid_145.xml",
            145,
            "SP.Admin",
            "Session has expired or is invalid",
        ),
        (
            "Fault.invalid_xml_request_errorid_51.xml",
            51,
            "SP.API",
            "Invalid XML Request",
        ),
        (
            "GetContactMailingDetails.fault_errorid_330.xml",
            330,
            "SP.API",
            "The value you entered could not be confirmed.",
        ),
    ] {
        match read_answer(&fixture(name)).unwrap() {
            Answer::Failed(f) => {
                assert_eq!(f.errorid, Some(id), "{name}");
                assert_eq!(f.class.as_deref(), Some(class), "{name}");
                assert_eq!(f.text, text, "{name}");
                assert_eq!(f.is_session_lost(), id == 145, "{name}");
            }
            Answer::Success(_) => panic!("{name} read as success"),
        }
    }
}

#[test]
fn fault_wins_over_a_true_success() {
    let body = b"<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS></RESULT><Fault><FaultString>x</FaultString><detail><error><errorid>51</errorid></error></detail></Fault></Body></Envelope>";
    assert!(matches!(read_answer(body).unwrap(), Answer::Failed(f) if f.errorid == Some(51)));
    for spelling in ["TRUE", "true", "Success", "SUCCESS"] {
        let body = format!(
            "<Envelope><Body><RESULT><SUCCESS>{spelling}</SUCCESS></RESULT></Body></Envelope>"
        );
        assert!(matches!(
            read_answer(body.as_bytes()).unwrap(),
            Answer::Success(_)
        ));
    }
    let body = b"<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT></Body></Envelope>";
    assert!(matches!(read_answer(body).unwrap(), Answer::Failed(_)));
    assert!(read_answer(b"<html>503</html>").is_err());
}

#[test]
fn simple_results_succeed() {
    for name in [
        "Logout.response.xml",
        "AddRecipient.response.xml",
        "RemoveRecipient.response.xml",
        "CalculateQuery.response.xml",
        "CreateContactList.response.xml",
        "CreateTable.response.xml",
        "ExportList.response.xml",
        "ImportList.response.xml",
        "GetListMetaData.response.xml",
        "GetQuery.response.xml",
        "RawRecipientDataExport.response.xml",
    ] {
        success(name);
    }
    assert_eq!(
        success("AddRecipient.response.xml").child_text("RecipientId"),
        Some("33535067")
    );
    assert_eq!(
        success("ScheduleMailing.response.xml").child_text("MAILING_ID"),
        Some("1878843")
    );
    assert_eq!(
        success("CreateTable.response.xml").child_text("TABLE_ID"),
        Some("499600")
    );
}

#[test]
fn templates_and_visibility() {
    let t = MailingTemplate::list(&success("GetMailingTemplates.response.xml"));
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].mailing_id, "365333");
    assert_eq!(t[0].name, "Mailing One");
    assert_eq!(t[1].subject.as_deref(), Some("Mailing Two"));
    // The fixture's templates are private (0): the shared-only filter drops them.
    assert!(t.iter().all(|t| !t.is_shared()));
}

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

/// The org time `text` read in `zone`, as the API gives it.
fn org(text: &str, zone_name: &str) -> Option<String> {
    wire::org_time(text, &zone(zone_name)).map(|t| wire::rfc3339(&t))
}

#[test]
fn recorded_last_modified_is_rfc3339_with_the_org_zone_offset() {
    let t = MailingTemplate::list(&success("GetMailingTemplates.response.xml"));
    assert_eq!(t[0].last_modified.as_deref(), Some("08/23/07 04:18 PM"));
    // August and September: summer time in New York and in Berlin.
    let created = |zone_name: &str| {
        t.iter()
            .map(|t| t.last_modified_in(&zone(zone_name)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        created("America/New_York"),
        [
            Some("2007-08-23T16:18:00-04:00".to_owned()),
            Some("2007-09-26T10:31:00-04:00".to_owned())
        ]
    );
    assert_eq!(
        created("Europe/Berlin")[0].as_deref(),
        Some("2007-08-23T16:18:00+02:00")
    );
    assert_eq!(
        created("UTC")[0].as_deref(),
        Some("2007-08-23T16:18:00+00:00")
    );
    // The same wall time is a different instant in each zone, and the text says which.
    let instant = |zone_name: &str| {
        created(zone_name)[0]
            .as_deref()
            .unwrap()
            .parse::<Timestamp>()
            .unwrap()
    };
    assert_eq!(
        instant("America/New_York").as_second() - instant("UTC").as_second(),
        4 * 3600
    );
    // GetListMetaData's recorded times are in the same format; February is winter time.
    let meta = success("GetListMetaData.response.xml");
    for element in ["LAST_MODIFIED", "LAST_CONFIGURED", "CREATED"] {
        let text = meta.child_text(element).unwrap();
        assert_eq!(
            org(text, "America/New_York").as_deref(),
            Some("2006-02-02T16:51:00-05:00"),
            "{element}"
        );
    }
    for row in success("GetLists.response.xml").children_named("LIST") {
        let text = row.child_text("LAST_MODIFIED").unwrap();
        assert!(org(text, "Australia/Sydney").is_some(), "{text}");
    }
}

#[test]
fn org_times_across_dst_changes() {
    let ny = "America/New_York";
    assert_eq!(
        org("01/15/24 09:05 AM", ny).as_deref(),
        Some("2024-01-15T09:05:00-05:00")
    );
    assert_eq!(
        org("07/04/24 12:00 PM", ny).as_deref(),
        Some("2024-07-04T12:00:00-04:00")
    );
    assert_eq!(
        org("07/04/24 12:00 AM", ny).as_deref(),
        Some("2024-07-04T00:00:00-04:00")
    );
    // 2024-03-10 02:30 does not occur in New York (02:00 EST → 03:00 EDT): read with the
    // offset before the change, it is 03:30 EDT.
    assert_eq!(
        org("03/10/24 02:30 AM", ny).as_deref(),
        Some("2024-03-10T03:30:00-04:00")
    );
    // 2024-11-03 01:30 occurs twice (EDT, then EST): the earlier.
    assert_eq!(
        org("11/03/24 01:30 AM", ny).as_deref(),
        Some("2024-11-03T01:30:00-04:00")
    );
    // The southern hemisphere's summer time is in January.
    assert_eq!(
        org("01/15/24 09:05 PM", "Australia/Sydney").as_deref(),
        Some("2024-01-15T21:05:00+11:00")
    );
    // Lenient as ka's `M/d/yy h:mm a`: short fields, any case, seconds, four-digit years, a
    // 24-hour clock.
    assert_eq!(
        org("7/4/24 9:05 pm", ny).as_deref(),
        Some("2024-07-04T21:05:00-04:00")
    );
    assert_eq!(
        org(" 07/04/2024  09:05:30 PM ", ny).as_deref(),
        Some("2024-07-04T21:05:30-04:00")
    );
    assert_eq!(
        org("07/04/24 21:05", ny).as_deref(),
        Some("2024-07-04T21:05:00-04:00")
    );
}

#[test]
fn unreadable_org_times_are_none() {
    for text in [
        "",
        "   ",
        "05/28/24",
        "03:12 PM",
        "yesterday",
        "2024-05-28T15:12:00Z",
        "2024-05-28 15:12:00.0",
        "13/01/24 10:00 AM",
        "02/30/24 10:00 AM",
        "00/10/24 10:00 AM",
        "05/28/24 13:12 PM",
        "05/28/24 00:12 AM",
        "05/28/24 24:00",
        "05/28/24 03:60 PM",
        "05/28/24 03:12:61 PM",
        "05/28/24 3:2 PM",
        "05/28/24 03:12 XM",
        "05/28/24 03:12 PM EST",
        "05/28/024 03:12 PM",
        "05/28/1999 03:12 PM",
        "05/28/24/1 03:12 PM",
        "05/28/24 03:12:00:00 PM",
        "+5/28/24 03:12 PM",
        "05/28/24 -3:12 PM",
        "\u{ff10}5/28/24 03:12 PM",
    ] {
        assert_eq!(org(text, "America/New_York"), None, "{text:?}");
    }
}

#[test]
fn lists_skip_folders() {
    let l = ListRow::list(&success("GetLists.response.xml"));
    assert_eq!(
        l,
        vec![ListRow {
            id: "323543".into(),
            name: "List One".into()
        }]
    );
}

#[test]
fn sent_mailings() {
    let m = SentMailing::list(&success("GetSentMailingsForOrg.response.xml"));
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].mailing_id, "7877");
    assert_eq!(m[0].report_id.as_deref(), Some("6655"));
    assert_eq!(m[0].name, "My mailing");
    assert_eq!(m[1].sent_ts.as_deref(), Some("2017-06-02 08:02:20.0"));
    assert_eq!(m[1].num_sent, 6041);
}

#[test]
fn aggregate_tracking_maps_to_metrics() {
    let a = AggregateTracking::from_result(&success("GetAggregateTrackingForMailing.response.xml"))
        .unwrap();
    assert_eq!(a.sent, 6047);
    assert_eq!((a.bounce_hard, a.bounce_soft), (2, 45));
    assert_eq!(a.unique_open, 1891);
    let m = metrics(a);
    assert_eq!(m.delivered, 6047 - 47);
    assert_eq!(m.opens, 1891);
    assert_eq!(m.clicks, a.unique_click);
    assert_eq!(m.unsubscribes, a.unsubscribes);
    assert_eq!(m.complaints, 7);
}

#[test]
fn relational_table_results() {
    assert!(RowFailure::list(&success("InsertUpdateRelationalTable.response.xml")).is_empty());
    let body = br#"<Envelope><Body><RESULT><SUCCESS>true</SUCCESS><FAILURES>
      <FAILURE failure_type="permanent" description="Invalid Number in column: CampaignId">
        <COLUMN name="CustomerID">C-1002</COLUMN></FAILURE></FAILURES></RESULT></Body></Envelope>"#;
    let Answer::Success(r) = read_answer(body).unwrap() else {
        panic!("per-row failures must not fail the call")
    };
    let f = RowFailure::list(&r);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].failure_type, "permanent");
    assert_eq!(f[0].column("CustomerID"), Some("C-1002"));
}

#[test]
fn request_fixtures_are_well_formed() {
    for name in [
        "AddRecipient.request.xml",
        "CreateContactList.request.decoded.xml",
        "CreateTable.request.xml",
        "GetAggregateTrackingForMailing.request.xml",
        "GetAggregateTrackingForOrg.request.xml",
        "GetQuery.request.xml",
        "GetSentMailingsForOrg.request.decoded.xml",
        "ImportList.request.decoded.xml",
        "InsertUpdateRelationalTable.request.xml",
        "Login.request.decoded.xml",
        "Login.request.xml",
        "Logout.request.decoded.xml",
        "PreviewMailing.request.decoded.xml",
        "ScheduleMailing.request.xml",
    ] {
        let root = parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(root.name, "Envelope", "{name}");
        assert!(root.child("Body").is_some(), "{name}");
    }
    let r = parse(&fixture("InsertUpdateRelationalTable.request.xml")).unwrap();
    let rows = &r.child("Body").unwrap().children[0];
    assert!(rows.child("ROWS").is_some());
}

#[test]
fn contact_list_query_size_and_job_results() {
    assert_eq!(
        success("CreateContactList.response.xml").child_text("CONTACT_LIST_ID"),
        Some("12345")
    );
    assert_eq!(
        list_size(&success("GetListMetaData.response.xml")),
        Some(12)
    );
    assert_eq!(
        success("CalculateQuery.response.xml").child_text("JOB_ID"),
        Some("499600")
    );
    for (text, want) in [
        ("WAITING", JobStatus::Waiting),
        ("RUNNING", JobStatus::Running),
        ("COMPLETE", JobStatus::Complete),
        ("ERROR", JobStatus::Error),
        ("CANCELED", JobStatus::Canceled),
        ("PAUSED", JobStatus::Unknown("PAUSED".into())),
    ] {
        let body = format!(
            "<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><JOB_ID>1</JOB_ID>\
             <JOB_STATUS>{text}</JOB_STATUS></RESULT></Body></Envelope>"
        );
        let Answer::Success(r) = read_answer(body.as_bytes()).unwrap() else {
            panic!("{text}")
        };
        assert_eq!(JobStatus::from_result(&r), Some(want));
    }
}

#[test]
fn create_contact_list_is_built_as_the_fixture_sends_it() {
    let shape = |doc: &[u8]| -> Vec<(String, String)> {
        let root = parse(doc).unwrap();
        root.child("Body").unwrap().children[0]
            .children
            .iter()
            .map(|c| (c.name.clone(), c.text.clone()))
            .collect()
    };
    let ours = envelope(wire::create_contact_list("12345", "my-group", "")).unwrap();
    assert_eq!(
        shape(&ours),
        shape(&fixture("CreateContactList.request.decoded.xml"))
    );
}
