use crate::proto::http::testing;

#[test]
fn each_form_part_is_a_file() {
    let body = b"--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.html\"\r\n\r\n<html>hi</html>\r\n--X--\r\n";
    let out = testing::post(
        "Host: h\r\nContent-Type: multipart/form-data; boundary=X\r\n",
        body,
        Some(b"HTTP/1.1 204 No Content\r\n\r\n"),
    );
    let rows = out.rows();
    assert_eq!(rows.len(), 1);
    let cols: Vec<&str> = rows[0].split('\t').collect();
    assert_eq!(cols[8], body.len().to_string());
    assert_eq!(cols[18].split(',').count(), 2, "{}", rows[0]);
    assert_eq!((cols[19], cols[20]), ("x.html", "text/html"));
}

/// HTTP::max_files_orig: a transaction lists at most 15 of its request's files, while every
/// part is still a file in files.log.
#[test]
fn a_transaction_lists_at_most_15_files() {
    let mut body = Vec::new();
    for i in 0..17 {
        body.extend_from_slice(
            format!("--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f{i}\"\r\n\r\nsome plain text {i}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(b"--X--\r\n");
    let out = testing::post(
        "Content-Type: multipart/form-data; boundary=X\r\n",
        &body,
        None,
    );
    assert_eq!(out.files.len(), 17);
    let rows = out.rows();
    let cols: Vec<&str> = rows[0].split('\t').collect();
    for col in &cols[18..21] {
        assert_eq!(col.split(',').count(), 15, "{}", rows[0]);
    }
    assert!(cols[19].ends_with(",f14"), "{}", cols[19]);
}

/// A form part of type `multipart/mixed` (`MIME_Entity::BeginChildEntity`): its own parts are
/// the files, a part nested in a `message/rfc822` one too; a part below `MIME::max_depth`
/// (each level here is two entities deep) gets no child, with `exceeded_mime_max_depth` and
/// the history's 'X'.
#[test]
fn parts_nest_in_parts_down_to_the_max_depth() {
    let post = |levels: usize| {
        let mut inner = format!("--L{levels}.\r\n\r\na leaf\r\n--L{levels}.--\r\n").into_bytes();
        for k in (0..levels).rev() {
            let mut level =
                format!("--L{k}.\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=L{}.\r\n\r\n", k + 1)
                    .into_bytes();
            level.extend_from_slice(&inner);
            level.extend_from_slice(format!("--L{k}.--\r\n").as_bytes());
            inner = level;
        }
        let body = [
            &b"--X\r\nContent-Type: multipart/mixed; boundary=L0.\r\n\r\n"[..],
            &inner,
            b"--X--\r\n",
        ]
        .concat();
        testing::post(
            "Content-Type: multipart/form-data; boundary=X\r\n",
            &body,
            None,
        )
    };
    let out = post(2);
    assert!(out.weirds.is_empty(), "{:?}", out.weirds);
    assert_eq!(out.partial, 0);
    assert_eq!(out.files.len(), 1, "the leaf");
    let out = post(60);
    assert_eq!(out.weirds, ["exceeded_mime_max_depth"]);
    assert_eq!(out.partial, 1);
}
