//! Rows as Zeek's JSON writer writes them (`LogAscii::use_json`, timestamps as epoch numbers).

use crate::Header;

/// The row `line` (one TSV line without its newline) as a JSON object; columns beyond the
/// header's are left out, missing ones are unset.
pub fn write_json_row(line: &[u8], file: &Header, out: &mut Vec<u8>) {
    let fields: Vec<&[u8]> = line.split(|&b| b == file.separator).collect();
    write_json(&fields, file, out);
}

/// Zeek's JSON writer: unset fields left out, containers as arrays, numbers and bools bare.
pub fn write_json(fields: &[&[u8]], file: &Header, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for ((name, ty), value) in file.fields.iter().zip(&file.types).zip(fields) {
        if *value == file.unset_field.as_slice() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_string(name.as_bytes(), out);
        out.push(b':');
        match ty.split_once('[') {
            Some((_, inner)) => {
                let element = inner.trim_end_matches(']');
                out.push(b'[');
                if *value != file.empty_field.as_slice() {
                    let separator = file.set_separator.as_slice();
                    let mut rest: &[u8] = value;
                    let mut first_element = true;
                    loop {
                        let (element_text, next) = match memchr::memmem::find(rest, separator)
                            .filter(|_| !separator.is_empty())
                        {
                            Some(at) => (&rest[..at], Some(&rest[at + separator.len()..])),
                            None => (rest, None),
                        };
                        if !first_element {
                            out.push(b',');
                        }
                        first_element = false;
                        json_scalar(element, element_text, out);
                        match next {
                            Some(n) => rest = n,
                            None => break,
                        }
                    }
                }
                out.push(b']');
            }
            None if ty == "string" && *value == file.empty_field.as_slice() => {
                out.extend_from_slice(b"\"\"")
            }
            None => json_scalar(ty, value, out),
        }
    }
    out.push(b'}');
}

fn json_scalar(ty: &str, value: &[u8], out: &mut Vec<u8>) {
    let number = || {
        std::str::from_utf8(value)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    };
    match ty {
        "count" | "int" | "port" | "double" | "time" | "interval" if number() => {
            out.extend_from_slice(value)
        }
        "bool" if value == b"T" => out.extend_from_slice(b"true"),
        "bool" if value == b"F" => out.extend_from_slice(b"false"),
        _ => json_string(&unescape(value), out),
    }
}

/// Zeek escapes separators and unprintable bytes in TSV as `\xNN`.
fn unescape(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if let [b'\\', b'x', hi, lo, ..] = value[i..] {
            let hex = [hi, lo];
            if let Some(byte) = std::str::from_utf8(&hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(value[i]);
        i += 1;
    }
    out
}

fn json_string(value: &[u8], out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(value);
    // Serializing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONN: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.resp_p\tlocal_orig\tservice\ttunnel_parents\tduration\n#types\ttime\tstring\tport\tbool\tstring\tset[string]\tinterval\n";

    fn row(line: &str) -> serde_json::Value {
        let (header, _) = Header::parse(CONN.as_bytes()).unwrap();
        let mut out = Vec::new();
        write_json_row(line.as_bytes(), &header, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn typed_values_unset_fields_left_out_containers_as_arrays() {
        let v = row("1.500000\tC1\t80\tT\t(empty)\tCa,Cb\t-");
        assert_eq!(
            v,
            serde_json::json!({"ts": 1.5, "uid": "C1", "id.resp_p": 80, "local_orig": true,
                "service": "", "tunnel_parents": ["Ca", "Cb"]})
        );
        assert_eq!(
            row("1.0\tC1\t80\tF\t-\t(empty)\t0.25")["tunnel_parents"],
            serde_json::json!([])
        );
    }

    #[test]
    fn escapes_are_undone_and_bad_numbers_become_strings() {
        let v = row("x\tC\\x09D\t80\tT\ta\\x5cb\t-\t-");
        assert_eq!(v["ts"], "x");
        assert_eq!(v["uid"], "C\tD");
        assert_eq!(v["service"], "a\\b");
        let short = row("1.0\tC1");
        assert_eq!(short, serde_json::json!({"ts": 1.0, "uid": "C1"}));
    }
}
