pub fn render_html(_r: &crate::report::Report) -> String {
    String::new()
}
