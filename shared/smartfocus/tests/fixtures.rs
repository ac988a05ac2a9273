//! Every recorded payload in `fixtures/` (this crate's recorded payloads) read by the adapter's wire types.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_smartfocus::wire::{
    self, Answer, Element, MessageInfo, NamedObject, Snapshot, SummaryPage, UploadState,
    UploadStatus,
};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn success(name: &str) -> Element {
    match Answer::from_xml(&fixture(name)).unwrap() {
        Answer::Success(p) => p,
        Answer::Failed(f) => panic!("{name} parsed as failed: {f:?}"),
    }
}

#[test]
fn connect_open_and_close() {
    let p = success("connect_open.response.xml");
    assert_eq!(p.attr("responseStatus"), Some("success"));
    assert_eq!(wire::scalar(&p), Some("111token111"));
    let p = success("connect_close.response.xml");
    assert_eq!(wire::scalar(&p), Some("connection closed"));
    assert_eq!(
        wire::scalar(&success("soap_openApiConnection.response.xml")),
        Some("TOKEN12345")
    );
    assert_eq!(
        wire::scalar(&success("soap_closeApiConnection.response.xml")),
        Some("connection closed")
    );
}

#[test]
fn failed_envelope() {
    match Answer::from_xml(&fixture("error_failed.GET_FLATUPLOAD_FAILED.response.xml")).unwrap() {
        Answer::Failed(f) => {
            assert_eq!(f.status, "GET_FLATUPLOAD_FAILED");
            assert_eq!(f.description, "No flatUpload found!");
            assert_eq!(f.fields, "12345");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn batchmember_answers() {
    assert_eq!(
        wire::scalar(&success("batchmember_upload.response.xml")),
        Some("197323")
    );
    let s =
        UploadStatus::from_payload(&success("batchmember_getUploadStatus.response.xml")).unwrap();
    assert_eq!(s.status, "QUEUED");
    assert_eq!(s.state(), UploadState::Pending("QUEUED".into()));
    let last = wire::last_uploads(&success("batchmember_getLastUpload.response.xml"));
    assert_eq!(last.len(), 4);
    assert_eq!(last[0].id, "197325");
    assert_eq!(last[0].source.as_deref(), Some("API_BATCH_MEMBER"));
    assert_eq!(last[3].status, "DONE");
    assert_eq!(last.iter().filter(|u| u.status == "QUEUED").count(), 3);
}

#[test]
fn upload_states() {
    let st = |s: &str| {
        UploadStatus {
            status: s.into(),
            details: None,
        }
        .state()
    };
    assert_eq!(st("DONE"), UploadState::Done { with_errors: false });
    assert_eq!(
        st("DONE WITH ERRORS"),
        UploadState::Done { with_errors: true }
    );
    assert_eq!(st("ERROR"), UploadState::Failed("ERROR".into()));
    assert_eq!(st("FAILURE"), UploadState::Failed("FAILURE".into()));
    assert_eq!(st("IMPORTING"), UploadState::Pending("IMPORTING".into()));
}

#[test]
fn member_entries() {
    let p = success("member_getMemberByEmail.response.xml");
    let entries: Vec<_> = p
        .child("members")
        .and_then(|m| m.child("member"))
        .and_then(|m| m.child("attributes"))
        .map(|a| a.children_named("entry").collect())
        .unwrap_or_default();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].child_text("key"), Some("MEMBER_ID"));
    assert_eq!(entries[0].child_text("value"), Some("1"));
    assert_eq!(
        entries[0].child("value").and_then(|v| v.attr("type")),
        Some("xs:long")
    );
}

#[test]
fn request_documents_parse_back() {
    let multipart =
        String::from_utf8(fixture("batchmember_insertUpload.multipart.request.txt")).unwrap();
    let start = multipart.find("<?xml").unwrap();
    let end = multipart.find("</insertUpload>").unwrap() + "</insertUpload>".len();
    let insert = wire::parse(&multipart.as_bytes()[start..end]).unwrap();
    assert_eq!(insert.name, "insertUpload");
    assert_eq!(
        insert
            .child("mapping")
            .unwrap()
            .children_named("column")
            .count(),
        3
    );

    let merge = wire::parse(&fixture("batchmember_mergeUpload.xml_part.request.xml")).unwrap();
    assert_eq!(merge.child_text("criteria"), Some("LOWER(EMAIL)"));
    let cols: Vec<_> = merge
        .child("mapping")
        .unwrap()
        .children_named("column")
        .collect();
    assert_eq!(cols.len(), 4);
    assert_eq!(cols[3].child_text("defaultValue"), Some("TESTAPI"));
    assert_eq!(cols[1].child_text("toReplace"), Some("true"));

    let seg = wire::parse(&fixture("segmentationservice_segment_create.request.xml")).unwrap();
    assert_eq!(seg.child_text("name"), Some("QA TEAM"));
    assert_eq!(seg.child_text("sampleType"), Some("ALL"));
    let upd = wire::parse(&fixture("segmentationservice_segment_update.request.xml")).unwrap();
    assert_eq!(
        upd.child_text("name"),
        Some("Updated QA Automation Segment")
    );
    let crit = wire::parse(&fixture(
        "segmentationservice_criteria_addStringDemographic.request.xml",
    ))
    .unwrap();
    assert_eq!(crit.child_text("columnName"), Some("SOURCE"));
    assert_eq!(crit.child_text("operator"), Some("EQUALS"));
    assert_eq!(crit.child_text("values"), Some("123"));
    let rec = wire::parse(&fixture(
        "segmentationservice_criteria_addRecency.request.xml",
    ))
    .unwrap();
    assert_eq!(rec.child_text("periodDayEndList"), Some("120"));
    let msg = wire::parse(&fixture("message_create.request.xml")).unwrap();
    assert_eq!(msg.child_text("name"), Some("TM_TEST"));
    assert!(
        msg.child_text("body")
            .unwrap()
            .starts_with("[EMV HTMLPART]")
    );
}

#[test]
fn soap_scalars() {
    for (file, want) in [
        ("soap_cloneMessage.response.xml", "1906"),
        ("soap_createCampaign.response.xml", "2181"),
        ("soap_createCampaignWithAnalytics.response.xml", "2181"),
        ("soap_postCampaign.response.xml", "true"),
        ("soap_getCampaignStatus.response.xml", "Editable"),
        ("soap_segmentationCreateSegment.response.xml", "1122378"),
        (
            "soap_segmentationAddStringDemographicCriteriaByObj.response.xml",
            "true",
        ),
        ("soap_segmentationCount.response.xml", "7000"),
        ("soap_updateMessage.response.xml", "true"),
    ] {
        assert_eq!(wire::scalar(&success(file)), Some(want), "{file}");
    }
}

#[test]
fn soap_id_lists() {
    let last = wire::id_list(&success("soap_getLastEmailMessages.response.xml"));
    assert_eq!(last.len(), 10);
    assert_eq!(last[0], "1906");
    assert_eq!(last[9], "1292");
    assert_eq!(
        wire::id_list(&success("soap_getMessagesByPeriod.response.xml")).len(),
        18
    );
    assert_eq!(
        wire::id_list(&success("soap_getEmailMessagesByField.response.xml")),
        ["1816"]
    );
    assert_eq!(
        wire::id_list(&success("soap_getCampaignByStatus.response.xml")),
        ["468", "582"]
    );
    let camps = wire::id_list(&success("soap_getLastCampaigns.response.xml"));
    assert_eq!(camps.len(), 10);
    assert_eq!(camps[1], "2001");
    assert_eq!(
        wire::id_list(&success("soap_segmentationGetSegmentList.response.xml")),
        ["1122365", "1122364", "1122363"]
    );
}

#[test]
fn soap_objects() {
    let m = MessageInfo::from_payload(&success("soap_getMessage.response.xml")).unwrap();
    assert_eq!(m.id, "1972");
    assert_eq!(m.name, "test name");
    assert_eq!(m.subject.as_deref(), Some("test subject"));
    assert_eq!(m.kind.as_deref(), Some("email"));
    assert_eq!(m.created.as_deref(), Some("2009-05-04T00:00:00+02:00"));

    let c = NamedObject::from_payload(&success("soap_getCampaign.response.xml")).unwrap();
    assert_eq!((c.id.as_str(), c.name.as_str()), ("2182", "Summer Sales"));
    assert_eq!(c.status.as_deref(), Some("EDITABLE"));
    let p = success("soap_getCampaign.response.xml");
    let ret = p.child("return").unwrap();
    assert_eq!(ret.child_text("mailingListId"), Some("2191"));
    assert_eq!(ret.child_text("sendDate"), Some("2009-12-15T00:00:00"));

    let s = NamedObject::from_payload(&success("soap_segmentationGetSegmentById.response.xml"))
        .unwrap();
    assert_eq!(
        (s.id.as_str(), s.name.as_str()),
        ("1122365", "Test 5 Demographic")
    );

    let crit = success("soap_segmentationGetSegmentCriterias.response.xml");
    let returns: Vec<_> = crit.children_named("return").collect();
    assert_eq!(returns.len(), 3);
    assert_eq!(
        returns[1].attr("type"),
        Some("ns2:apiStringDemographicCriteria")
    );
    assert_eq!(
        returns[1].child_text("operator"),
        Some("OPERATOR_IS_NOT_EMPTY_ID")
    );
    assert_eq!(
        returns[1].child("values").and_then(|v| v.attr("nil")),
        Some("true")
    );
}

#[test]
fn preview_keeps_the_cdata_html() {
    let p = success("soap_getEmailMessagePreview.response.xml");
    let html = wire::scalar(&p).unwrap();
    assert!(html.starts_with("<!DOCTYPE html"), "{html}");
    assert!(html.contains("<td>test HTML</td>"));
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn snapshot_and_global_report() {
    let s =
        Snapshot::from_payload(&success("soap_getCampaignSnapshotReport.response.xml")).unwrap();
    assert_eq!(s.delivered, 100011);
    assert_eq!(s.unique_opens, 4);
    assert_eq!(s.selected, 100014);
    let c = s.counts();
    assert_eq!(c.sent, 100011);
    assert_eq!(c.delivered, 100011);
    assert_eq!(c.opens, 4);
    assert_eq!(c.clicks, 0);
    assert_eq!(c.unsubscribes, 0);

    let g = success("soap_getGlobalReportByCampaignId.response.xml");
    let r = g.child("return").unwrap();
    assert_eq!(r.child_text("nbDelivered"), Some("9830"));
    assert_eq!(r.child_text("nbUnjoined"), Some("200"));
    // The global report has no unique-open field: the snapshot reader reads what it has.
    let gs = Snapshot::from_payload(&g).unwrap();
    assert_eq!(gs.delivered, 9830);
    assert_eq!(gs.selected, 10000);
}

fn zone(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap()
}

/// The `return` element's text of `field` in a recorded SOAP answer.
fn returned(name: &str, field: &str) -> String {
    let p = success(name);
    p.find(&|e| e.child(field).is_some())
        .and_then(|e| e.child_text(field))
        .unwrap_or_else(|| panic!("{name} has no {field}"))
        .to_owned()
}

#[test]
fn recorded_dates_become_rfc3339_with_the_account_offset() {
    let m = MessageInfo::from_payload(&success("soap_getMessage.response.xml")).unwrap();
    let created = m.created.as_deref().unwrap();
    // With an offset: the same instant in the account's zone.
    assert_eq!(
        wire::rfc3339_in(created, &zone("Europe/Paris")).as_deref(),
        Some("2009-05-04T00:00:00+02:00")
    );
    assert_eq!(
        wire::rfc3339_in(created, &zone("UTC")).as_deref(),
        Some("2009-05-03T22:00:00+00:00")
    );
    assert_eq!(
        wire::rfc3339_in(created, &zone("America/New_York")).as_deref(),
        Some("2009-05-03T18:00:00-04:00")
    );
    // Without an offset (getCampaign's sendDate): read in the account's zone.
    let send = returned("soap_getCampaign.response.xml", "sendDate");
    assert_eq!(send, "2009-12-15T00:00:00");
    assert_eq!(
        wire::rfc3339_in(&send, &zone("Europe/Paris")).as_deref(),
        Some("2009-12-15T00:00:00+01:00")
    );
    assert_eq!(
        wire::rfc3339_in(&send, &zone("America/New_York")).as_deref(),
        Some("2009-12-15T00:00:00-05:00")
    );
    for (file, field, paris) in [
        (
            "soap_getCampaignSnapshotReport.response.xml",
            "beginDate",
            "2009-04-03T15:40:01+02:00",
        ),
        (
            "soap_segmentationGetSegmentById.response.xml",
            "dateCreate",
            "2010-12-16T15:04:40+01:00",
        ),
        (
            "soap_getGlobalReportByCampaignId.response.xml",
            "sendDate",
            "2010-03-04T13:23:13+01:00",
        ),
    ] {
        let raw = returned(file, field);
        let out = wire::rfc3339_in(&raw, &zone("Europe/Paris")).unwrap();
        assert_eq!(out, paris, "{file}");
        let utc = wire::rfc3339_in(&raw, &zone("UTC")).unwrap();
        assert_eq!(
            utc.parse::<jiff::Timestamp>().unwrap(),
            out.parse::<jiff::Timestamp>().unwrap(),
            "{file}: one instant"
        );
        assert!(utc.ends_with("+00:00"), "{utc}");
    }
}

/// No recording of `getMessageSummaryList` exists: this answer is built from the WSDL beans
/// the reference cites (S1 `APIMessageSummaryList`/`APIMessageSummary`, S2 JAXB
/// `APIMessageSummaryList.MessageSummaryList` with `messageSummary` items), in the envelope of
/// the recorded SOAP answers. The dates are written the way JAXB writes `xs:dateTime`.
const SUMMARY_ANSWER: &str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
    <soap:Body>
        <ns2:getMessageSummaryListResponse xmlns:ns2="http://api.service.apiccmd.emailvision.com/">
            <return>
                <messageSummaryList>
                    <messageSummary>
                        <messageId>1972</messageId>
                        <name>optimove_spring</name>
                        <manager>api_manager</manager>
                        <createdDate>2013-04-05T10:20:58.000+02:00</createdDate>
                        <from>Shop</from>
                        <messageType>email</messageType>
                        <subject>Spring</subject>
                        <isBounceBack>false</isBounceBack>
                    </messageSummary>
                    <messageSummary>
                        <messageId>1973</messageId>
                        <name>espbridge_c42</name>
                        <createdDate>2013-04-06T08:00:00Z</createdDate>
                        <messageType>email</messageType>
                    </messageSummary>
                    <messageSummary>
                        <messageId>1974</messageId>
                        <name>optimove_no_date</name>
                        <messageType>email</messageType>
                    </messageSummary>
                </messageSummaryList>
                <pageSize>3</pageSize>
                <nbTotalItems>7</nbTotalItems>
                <page>1</page>
                <nextPage>true</nextPage>
                <previousPage>false</previousPage>
            </return>
        </ns2:getMessageSummaryListResponse>
    </soap:Body>
</soap:Envelope>"#;

#[test]
fn summary_list_answers_are_read_in_the_wsdl_shape() {
    let p = match Answer::from_xml(SUMMARY_ANSWER.as_bytes()).unwrap() {
        Answer::Success(p) => p,
        Answer::Failed(f) => panic!("{f:?}"),
    };
    let page = SummaryPage::from_payload(&p).unwrap();
    assert_eq!(
        (page.page, page.page_size, page.total, page.next_page),
        (Some(1), Some(3), Some(7), Some(true))
    );
    let ids: Vec<_> = page.items.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["1972", "1973", "1974"]);
    let first = &page.items[0];
    assert_eq!(first.name, "optimove_spring");
    assert_eq!(first.kind.as_deref(), Some("email"));
    assert_eq!(first.subject.as_deref(), Some("Spring"));
    assert_eq!(
        first
            .created
            .as_deref()
            .and_then(|c| wire::rfc3339_in(c, &zone("Europe/Paris"))),
        Some("2013-04-05T10:20:58+02:00".to_owned())
    );
    assert_eq!(
        wire::rfc3339_in(
            page.items[1].created.as_deref().unwrap(),
            &zone("Europe/Paris")
        )
        .as_deref(),
        Some("2013-04-06T10:00:00+02:00")
    );
    assert_eq!(page.items[2].created, None);

    // Summaries as repeated `messageSummaryList` elements (no wrapper) are read too.
    let flat = SUMMARY_ANSWER
        .replace("<messageSummaryList>", "")
        .replace("</messageSummaryList>", "")
        .replace("messageSummary>", "messageSummaryList>");
    let p = match Answer::from_xml(flat.as_bytes()).unwrap() {
        Answer::Success(p) => p,
        Answer::Failed(f) => panic!("{f:?}"),
    };
    assert_eq!(SummaryPage::from_payload(&p).unwrap().items.len(), 3);

    // A SOAP fault with the service's exception detail is a failure with its triple.
    let fault = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Your session has expired</faultstring><detail><ns2:ConnectionServiceException xmlns:ns2="http://api.service.apiccmd.emailvision.com/"><description>Your session has expired</description><fields>token</fields><status>CHECK_SESSION_FAILED</status></ns2:ConnectionServiceException></detail></soap:Fault></soap:Body></soap:Envelope>"#;
    match Answer::from_xml(fault.as_bytes()).unwrap() {
        Answer::Failed(f) => {
            assert_eq!(f.status, "CHECK_SESSION_FAILED");
            assert_eq!(f.description, "Your session has expired");
            assert_eq!(f.fields, "token");
        }
        other => panic!("{other:?}"),
    }
}
