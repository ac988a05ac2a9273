//! Silverpop's bulk import (reference A, "Batch file"): the mapping file uploaded beside the
//! CSV, the request that starts the data job (ImportList, ImportTable), and what the job's
//! status says. The files are written to the SFTP `upload` folder first ([`crate::sftp`]); the
//! job is then followed with GetJobStatus ([`crate::wire::get_job_status`]) until it ends.
//!
//! Lists mode imports into the database with ACTION `UPDATE_ONLY` keyed (SYNC_FIELDS) on
//! `customer_id_field`, adding each matched contact to the campaign's contact list
//! (CONTACT_LISTS): like AddContactToContactList it never creates a contact, and an id the
//! database does not have is a refused row of the job's error file. Relational Tables mode
//! imports the rows into the table with ACTION `ADD_AND_UPDATE` (the table's key includes
//! ActionID, so a repeated import replaces its own rows only).
//!
//! UNCERTAIN: the reference documents the LIST_IMPORT mapping only; TABLE_IMPORT / TABLE_INFO
//! follow its shape (the same MAPPING/COLUMN), and ImportTable takes the same MAP_FILE /
//! SOURCE_FILE / FILE_ENCODING as ImportList.

use crate::xml::{Element, Node};

/// The CSV's columns in order (it has a header row with these names).
pub type Columns<'a> = &'a [&'a str];

fn mapping(columns: Columns<'_>) -> Node {
    Node::new("MAPPING").children(columns.iter().enumerate().map(|(i, name)| {
        Node::new("COLUMN")
            .child(Node::text("INDEX", (i + 1).to_string()))
            .child(Node::text("NAME", *name))
            .child(Node::text("INCLUDE", "true"))
    }))
}

/// The mapping of a Lists-mode import: existing contacts of `database_id`, matched on
/// `key_field`, added to `contact_list_id`.
pub fn list_import_mapping(
    database_id: &str,
    key_field: &str,
    contact_list_id: &str,
    columns: Columns<'_>,
) -> Node {
    Node::new("LIST_IMPORT")
        .child(
            Node::new("LIST_INFO")
                .child(Node::text("ACTION", "UPDATE_ONLY"))
                .child(Node::text("LIST_ID", database_id))
                .child(Node::text("FILE_TYPE", "0"))
                .child(Node::text("HASHEADERS", "true")),
        )
        .child(
            Node::new("SYNC_FIELDS")
                .child(Node::new("SYNC_FIELD").child(Node::text("NAME", key_field))),
        )
        .child(mapping(columns))
        .child(Node::new("CONTACT_LISTS").child(Node::text("CONTACT_LIST_ID", contact_list_id)))
}

/// The mapping of a Relational Tables-mode import into `table_id`.
pub fn table_import_mapping(table_id: &str, columns: Columns<'_>) -> Node {
    Node::new("TABLE_IMPORT")
        .child(
            Node::new("TABLE_INFO")
                .child(Node::text("ACTION", "ADD_AND_UPDATE"))
                .child(Node::text("TABLE_ID", table_id))
                .child(Node::text("FILE_TYPE", "0"))
                .child(Node::text("HASHEADERS", "true")),
        )
        .child(mapping(columns))
}

fn import(op: &'static str, map_file: &str, source_file: &str) -> Node {
    Node::new(op)
        .child(Node::text("MAP_FILE", map_file))
        .child(Node::text("SOURCE_FILE", source_file))
        .child(Node::text("FILE_ENCODING", "UTF-8"))
}

/// Starts a Lists-mode import of `upload/<source_file>` with `upload/<map_file>`.
pub fn import_list(map_file: &str, source_file: &str) -> Node {
    import("ImportList", map_file, source_file)
}

/// Starts a Relational Tables-mode import.
pub fn import_table(map_file: &str, source_file: &str) -> Node {
    import("ImportTable", map_file, source_file)
}

/// `JOB_ID` of an answer that started a data job.
pub fn job_id(r: &Element) -> Option<&str> {
    r.child_text("JOB_ID")
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A `PARAMETERS/PARAMETER` of GetJobStatus by NAME.
pub fn job_parameter<'a>(r: &'a Element, name: &str) -> Option<&'a str> {
    r.child("PARAMETERS")?
        .children_named("PARAMETER")
        .find(|p| p.child_text("NAME").map(str::trim) == Some(name))?
        .child_text("VALUE")
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn reparsed(n: &Node) -> Element {
        parse(&n.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn a_list_mapping_matches_contacts_on_the_key_and_adds_them_to_the_list() {
        let m = reparsed(&list_import_mapping(
            "4211",
            "CustomerID",
            "9001",
            &["CustomerID", "First Name"],
        ));
        let info = m.child("LIST_INFO").unwrap();
        assert_eq!(info.child_text("ACTION"), Some("UPDATE_ONLY"));
        assert_eq!(info.child_text("LIST_ID"), Some("4211"));
        assert_eq!(info.child_text("HASHEADERS"), Some("true"));
        let sync = m.child("SYNC_FIELDS").unwrap().child("SYNC_FIELD").unwrap();
        assert_eq!(sync.child_text("NAME"), Some("CustomerID"));
        let cols: Vec<_> = m
            .child("MAPPING")
            .unwrap()
            .children_named("COLUMN")
            .map(|c| {
                (
                    c.child_text("INDEX").unwrap(),
                    c.child_text("NAME").unwrap(),
                )
            })
            .collect();
        assert_eq!(cols, [("1", "CustomerID"), ("2", "First Name")]);
        assert_eq!(
            m.child("CONTACT_LISTS")
                .unwrap()
                .child_text("CONTACT_LIST_ID"),
            Some("9001")
        );
    }

    #[test]
    fn a_table_mapping_and_the_import_requests_name_their_files() {
        let m = reparsed(&table_import_mapping("77", &["ActionID", "CustomerID"]));
        assert_eq!(
            m.child("TABLE_INFO").unwrap().child_text("TABLE_ID"),
            Some("77")
        );
        assert_eq!(
            m.child("MAPPING").unwrap().children_named("COLUMN").count(),
            2
        );
        for (node, op) in [
            (import_list("m.xml", "s.csv"), "ImportList"),
            (import_table("m.xml", "s.csv"), "ImportTable"),
        ] {
            let r = reparsed(&node);
            assert_eq!(r.name, op);
            assert_eq!(r.child_text("MAP_FILE"), Some("m.xml"));
            assert_eq!(r.child_text("SOURCE_FILE"), Some("s.csv"));
            assert_eq!(r.child_text("FILE_ENCODING"), Some("UTF-8"));
        }
    }

    #[test]
    fn job_answers_give_their_id_and_parameters() {
        let r = parse(
            b"<RESULT><SUCCESS>TRUE</SUCCESS><JOB_ID> 108518 </JOB_ID><PARAMETERS>\
              <PARAMETER><NAME>LIST_ID</NAME><VALUE>2740754</VALUE></PARAMETER></PARAMETERS></RESULT>",
        )
        .unwrap();
        assert_eq!(job_id(&r), Some("108518"));
        assert_eq!(job_parameter(&r, "LIST_ID"), Some("2740754"));
        assert_eq!(job_parameter(&r, "ERROR_FILE_NAME"), None);
        assert_eq!(job_id(&parse(b"<RESULT><JOB_ID/></RESULT>").unwrap()), None);
    }
}
