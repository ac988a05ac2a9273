//! The XML API's documents, on the shared element tree.

pub use espbridge_xml::{Element, Node, XmlError, parse};

/// `<Envelope><Body>{operation}</Body></Envelope>` as bytes.
pub fn envelope(operation: Node) -> Result<Vec<u8>, XmlError> {
    Node::new("Envelope")
        .child(Node::new("Body").child(operation))
        .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_wraps_the_operation() {
        let body = envelope(Node::new("X").child(Node::new("SHARED"))).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "<Envelope><Body><X><SHARED/></X></Body></Envelope>"
        );
    }
}
