//! The `file-magic` signatures of Zeek's `base/frameworks/files/magic` (general, programming,
//! java, executable, archive, image, audio, video and font), with their MIME type and strength,
//! plus the entries of its `libmagic.sig` that web and mail content commonly hits (not its
//! `<?xml version=` ones: Zeek types an XHTML page that starts with an XML declaration as
//! `text/html`, which those, at strength 185, would override). Patterns
//! are Zeek's, with `\/` and `\"` written unescaped; anchoring is added by the matcher.
//! A `file-mime` without a strength has strength 0.

pub struct Signature {
    pub mime: &'static str,
    pub strength: i32,
    pub magic: &'static str,
}

const fn sig(mime: &'static str, strength: i32, magic: &'static str) -> Signature {
    Signature {
        mime,
        strength,
        magic,
    }
}

/// What may precede an XML or HTML root element: a BOM, blank lines and comments, and an XML
/// declaration (the prefix Zeek's markup signatures share).
macro_rules! markup {
    ($tail:literal) => {
        concat!(
            r#"(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?([\x0d\x0a[:blank:]]*(<!--.*-->)?[\x0d\x0a[:blank:]]*)*(<\?xml .*\?>)?([\x0d\x0a[:blank:]]*(<!--.*-->)?[\x0d\x0a[:blank:]]*)*"#,
            $tail
        )
    };
}

/// `#!` followed by an interpreter path ending in `bin/`, as the script signatures start.
macro_rules! shebang {
    ($tail:literal) => {
        concat!(r#"\x23\x21[^\n]{1,15}bin/(env[[:space:]]+)?"#, $tail)
    };
}

pub const SIGNATURES: &[Signature] = &[
    // general.sig
    sig(
        "text/plain",
        -20,
        r#"(\xef\xbb\xbf|(\x00\x00)?\xfe\xff|\xff\xfe(\x00\x00)?)?[[:space:]\x20-\x7E]{10}"#,
    ),
    sig(
        "text/json",
        1,
        r#"(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?[\x0d\x0a[:blank:]]*\{[\x0d\x0a[:blank:]]*(["][^"]{1,}["]|[a-zA-Z][a-zA-Z0-9\\_]*)[\x0d\x0a[:blank:]]*:[\x0d\x0a[:blank:]]*(["]|\[|\{|[0-9]|true|false)"#,
    ),
    sig(
        "text/json",
        1,
        r#"(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?[\x0d\x0a[:blank:]]*\[[\x0d\x0a[:blank:]]*(((["][^"]{1,}["]|[0-9]{1,}(\.[0-9]{1,})?|true|false)[\x0d\x0a[:blank:]]*,)|\{|\[)[\x0d\x0a[:blank:]]*"#,
    ),
    sig(
        "text/json",
        0,
        r#"(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?[\x0d\x0a[:blank:]]*(\[\]|\{\})[\x0d\x0a[:blank:]]*$"#,
    ),
    sig(
        "application/xml",
        10,
        r#"(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?([\x0d\x0a[:blank:]]*(<!--.*-->)?[\x0d\x0a[:blank:]]*)*\x00?<\x00?\?\x00?x\x00?m\x00?l\x00? \x00?"#,
    ),
    sig(
        "text/html",
        100,
        markup!(
            r#"<(![dD][oO][cC][tT][yY][pP][eE] {1,}[hH][tT][mM][lL]|[hH][tT][mM][lL]|[mM][eE][tT][aA] {1,}[hH][tT][tT][pP]-[eE][qQ][uU][iI][vV])"#
        ),
    ),
    sig(
        "text/html",
        49,
        markup!(r#"<![dD][oO][cC][tT][yY][pP][eE] {1,}[hH][tT][mM][lL]"#),
    ),
    sig(
        "text/html",
        20,
        markup!(r#"<([hH][eE][aA][dD]|[hH][tT][mM][lL]|[tT][iI][tT][lL][eE]|[bB][oO][dD][yY])"#),
    ),
    sig("text/rss", 90, markup!(r#"<[rR][sS][sS]"#)),
    sig(
        "text/atom",
        100,
        markup!(
            r#"<([rR][sS][sS][^>]*xmlns:atom|[fF][eE][eE][dD][^>]*xmlns=["']?http://www.w3.org/2005/Atom["']?)"#
        ),
    ),
    sig(
        "application/soap+xml",
        49,
        markup!(r#"<[sS][oO][aA][pP](-[eE][nN][vV])?:[eE][nN][vV][eE][lL][oO][pP][eE]"#),
    ),
    sig(
        "text/x-cross-domain-policy",
        49,
        r#"([\x0d\x0a[:blank:]]*(<!--.*-->)?[\x0d\x0a[:blank:]]*)*(<\?xml .*\?>)?([\x0d\x0a[:blank:]]*(<!--.*-->)?[\x0d\x0a[:blank:]]*)*<![dD][oO][cC][tT][yY][pP][eE] {1,}[cC][rR][oO][sS][sS]-[dD][oO][mM][aA][iI][nN]-[pP][oO][lL][iI][cC][yY]"#,
    ),
    sig(
        "text/x-cross-domain-policy",
        49,
        r#"([\x0d\x0a[:blank:]]*(<!--.*-->)?[\x0d\x0a[:blank:]]*)*(<\?xml .*\?>)?([\x0d\x0a[:blank:]]*(<!--.*-->)?[\x0d\x0a[:blank:]]*)*<[cC][rR][oO][sS][sS]-[dD][oO][mM][aA][iI][nN]-[pP][oO][lL][iI][cC][yY]"#,
    ),
    sig(
        "application/xml-rpc",
        49,
        markup!(r#"<[mM][eE][tT][hH][oO][dD][rR][eE][sS][pP][oO][nN][sS][eE]>"#),
    ),
    sig(
        "magnus-internal/cold-fusion",
        20,
        r#"([\x0d\x0a[:blank:]]*(<!--.*-->)?)*<(CFPARAM|CFSET|CFIF)"#,
    ),
    sig(
        "application/f4m",
        49,
        markup!(
            r#"<[mM][aA][nN][iI][fF][eE][sS][tT][\x0d\x0a[:blank:]]{1,}xmlns="http://ns\.adobe\.com/f4m/"#
        ),
    ),
    sig(
        "text/ini",
        20,
        r#"(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?[\x00\x0d\x0a[:blank:]]*\[[^\x0d\x0a]+\][[:blank:]\x00]*[\x0d\x0a]"#,
    ),
    sig(
        "application/x-ms-shortcut",
        49,
        r#"\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"#,
    ),
    sig("application/vnd.ms-pol", 49, r#"PReg"#),
    sig("application/vnd.ms-reg", 49, r#"REGEDIT4"#),
    sig("application/vnd.ms-regf", 49, r#"\x72\x65\x67\x66"#),
    sig(
        "application/vnd.ms-outlook",
        49,
        r#"!BDN......[\x0e\x0f\x15\x17][\x00-\x02]"#,
    ),
    sig("application/vnd.apple-afpinfo", 0, r#"AFP"#),
    sig(
        "application/ocsp-request",
        71,
        r#".{11,19}\x06\x05\x2b\x0e\x03\x02\x1a"#,
    ),
    sig(
        "application/ocsp-response",
        71,
        r#".{11,19}\x06\x09\x2B\x06\x01\x05\x05\x07\x30\x01\x01"#,
    ),
    sig("application/x-shockwave-flash", 60, r#"(F|C|Z)WS"#),
    sig("application/vnd.ms-tnef", 100, r#"\x78\x9f\x3e\x22"#),
    sig(
        "application/pkcs7-signature",
        100,
        r#"MIME-Version:.*protocol="application/pkcs7-signature""#,
    ),
    sig("application/x-pem", 0, r#"-----BEGIN CERTIFICATE-----"#),
    sig(
        "application/vnd.tcpdump.pcap",
        70,
        r#"(\xa1\xb2\xc3\xd4|\xd4\xc3\xb2\xa1)"#,
    ),
    sig(
        "application/vnd.tcpdump.pcap",
        100,
        r#"\x0a\x0d\x0d\x0a.{4}(\x1a\x2b\x3c\x4d|\x4d\x3c\x2b\x1a)"#,
    ),
    sig("application/sla", 10, r#"solid\x20"#),
    sig("application/x-ms-dds", 100, r#"DDS"#),
    sig("application/bsdiff", 100, r#"BSDIFF"#),
    sig("application/bindiff", 100, r#"DIFF"#),
    sig("application/x-kaspavdb", 100, r#"KLZF"#),
    sig("application/x-kaspavupdate", 100, r#"KLD2"#),
    sig("application/mssql-bak", 100, r#"MSSQLBAK"#),
    sig("application/mtf", 100, r#"TAPE"#),
    sig("application/bplist", 100, r#"bplist0?"#),
    sig("application/mshelp", 100, r#"ITSF"#),
    sig("application/x-game-mpq", 100, r#"MPQ\x1a"#),
    sig("application/x-blizgame", 100, r#"BLTE"#),
    sig("application/map-tile", 100, r#"VMP4"#),
    sig("application/chrome-ext", 100, r#"Cr24"#),
    sig("application/chrome-ext-upd", 70, r#"CrOD"#),
    sig("application/msqm", 100, r#"MSQM"#),
    sig("application/x-vim-tmp", 100, r#"b0VIM"#),
    sig("application/x-windows-minidump", 50, r#"MDMP"#),
    // programming.sig
    sig(
        "text/x-shellscript",
        250,
        shebang!(r#"(ba|tc|c|z|fa|ae|k)?sh"#),
    ),
    sig("text/x-perl", 60, shebang!("perl")),
    sig("text/x-ruby", 60, shebang!("ruby")),
    sig("text/x-python", 60, shebang!("python")),
    sig("text/x-awk", 60, shebang!("(g|n)?awk")),
    sig("text/x-tcl", 60, shebang!("(wish|tcl)")),
    sig("text/x-lua", 49, shebang!("lua")),
    sig("application/javascript", 60, shebang!("node(js)?")),
    sig(
        "application/javascript",
        60,
        r#"[\x0d\x0a[:blank:]]*<[sS][cC][rR][iI][pP][tT][[:blank:]]+([tT][yY][pP][eE]|[lL][aA][nN][gG][uU][aA][gG][eE])=['"]?([tT][eE][xX][tT]/)?[jJ][aA][vV][aA][sS][cC][rR][iI][pP][tT]"#,
    ),
    sig(
        "application/javascript",
        60,
        r#"[\x0d\x0a[:blank:]]*for \(;;\);"#,
    ),
    sig(
        "application/javascript",
        60,
        r#"[\x0d\x0a[:blank:]]*document\.write(ln)?[:blank:]?\("#,
    ),
    sig(
        "application/javascript",
        60,
        r#"\(function\(\)[[:blank:]\n]*\{"#,
    ),
    sig(
        "application/javascript",
        60,
        r#"[\x0d\x0a[:blank:]]*<script>[\x0d\x0a[:blank:]]*(var|function) "#,
    ),
    sig("text/x-php", 60, shebang!("php")),
    sig("text/x-php", 40, r#".*<\?php"#),
    sig(
        "text/x-msdos-batch",
        110,
        r#"\x40 *[eE][cC][hH][oO] {1,}[oO][fF][fF]"#,
    ),
    sig("text/x-msdos-batch", 60, r#"\x40[rR][eE][mM]"#),
    sig("text/x-msdos-batch", 70, r#"\x40[sS][eE][tT] {1,}"#),
    sig("text/x-m4", 40, r#"dnl "#),
    // java.sig
    sig(
        "application/java-archive",
        100,
        r#"PK\x03\x04.{1,200}\x14\x00..META-INF/MANIFEST\.MF"#,
    ),
    sig(
        "application/x-java-applet",
        71,
        r#"\xca\xfe\xba\xbe...[\x2d-\x34]"#,
    ),
    sig("application/x-java-jnlp-file", 100, r#"<jnlp\x20"#),
    // executable.sig
    sig("application/x-dosexec", 51, r#"MZ"#),
    sig(
        "application/x-object",
        50,
        r#"\x7fELF[\x01\x02](\x01.{10}\x01\x00|\x02.{10}\x00\x01)"#,
    ),
    sig(
        "application/x-executable",
        50,
        r#"\x7fELF[\x01\x02](\x01.{10}\x02\x00|\x02.{10}\x00\x02)"#,
    ),
    sig(
        "application/x-sharedlib",
        50,
        r#"\x7fELF[\x01\x02](\x01.{10}\x03\x00|\x02.{10}\x00\x03)"#,
    ),
    sig(
        "application/x-coredump",
        50,
        r#"\x7fELF[\x01\x02](\x01.{10}\x04\x00|\x02.{10}\x00\x04)"#,
    ),
    sig(
        "application/x-mach-o-executable",
        100,
        r#"[\xce\xcf]\xfa\xed\xfe"#,
    ),
    sig(
        "application/x-mach-o-executable",
        100,
        r#"\xca\xfe\xba\xbe..\x00[\x01-\x14]"#,
    ),
    sig("application/x-elc", 10, r#"\x3bELC[\x00-\x1f\x80-\xff]"#),
    // archive.sig
    sig(
        "application/x-tar",
        100,
        r#"[[:print:]\x00]{100}([[:digit:]\x20]{7}\x00){3}([[:digit:]\x20]{11}\x00){2}([[:digit:]\x00\x20]{7}[\x20\x00])[0-7\x00]"#,
    ),
    sig("application/zip", 10, r#"PK\x03\x04.{2}"#),
    sig("application/zip", 10, r#"PK\x07\x08PK\x03\x04"#),
    sig("application/x-rar", 70, r#"Rar!"#),
    sig("application/x-gzip", 100, r#"\x1f\x8b"#),
    sig(
        "application/vnd.ms-cab-compressed",
        110,
        r#"MSCF\x00\x00\x00\x00"#,
    ),
    sig(
        "application/x-dmg",
        100,
        r#"(\x78\x01\x73\x0D\x62\x62\x60|\x78\xDA\x63\x60\x18\x05|\x78\x01\x63\x60\x18\x05|\x78\xDA\x73\x0D|\x78[\x01\xDA]\xED[\xD0-\xD9])"#,
    ),
    sig("application/x-xar", 100, r#"xar!"#),
    sig("application/x-rpm", 70, r#"(drpm|\xed\xab\xee\xdb)"#),
    sig(
        "application/x-debian-package",
        171,
        r#"\x21\x3carch\x3e\x0adebian"#,
    ),
    sig("application/x-stuffit", 70, r#"(SIT\x21|StuffIt)"#),
    sig("application/x-archive", 70, r#"!?<ar(ch)?>"#),
    sig(
        "application/x-arc",
        70,
        r#"[\x00-\x7f]{2}[\x02-\x0a\x14\x48]\x1a"#,
    ),
    sig("application/x-eet", 70, r#"\x1e\xe7\xff\x00"#),
    sig("application/x-zoo", 70, r#".{20}\xdc\xa7\xc4\xfd"#),
    sig("application/x-lz4", 70, r#"(\x02\x21\x4c\x18)"#),
    sig("application/x-lz4", 70, r#"\x04\x22\x4d\x18"#),
    sig("application/x-lrzip", 1, r#"LRZI"#),
    sig("application/x-lzip", 70, r#"LZIP"#),
    sig(
        "application/zip",
        340,
        r#"MZ.{28}(Copyright 1989\x2d1990 PKWARE Inc|PKLITE Copr)\x2e"#,
    ),
    sig(
        "application/x-lzh",
        80,
        r#".{2}-(lh[ abcdex0-9]|lz[s2-8]|lz[s2-8]|pm[s012]|pc1)-"#,
    ),
    sig("application/warc", 50, r#"WARC\x2f"#),
    sig("application/x-7z-compressed", 50, r#"7z\xbc\xaf\x27\x1c"#),
    sig("application/x-xz", 90, r#"\xfd7zXZ\x00"#),
    sig("application/x-lha", 120, r#"MZ.{34}LH[aA]\x27s SFX"#),
    sig("application/x-arj", 50, r#"\x60\xea"#),
    sig("application/x-cpio", 50, r#"(\x71\xc7|\xc7\x71)"#),
    sig("application/x-compress", 50, r#"\x1f\x9d"#),
    sig("application/x-lzma", 71, r#"\x5d\x00\x00"#),
    sig("application/x-ace", 100, r#".{7}\*\*ACE\*\*"#),
    sig("application/x-bzip2", 60, r#"BZh"#),
    // image.sig
    sig("image/tiff", 70, r#"(MM\x00[\x2a\x2b]|II[\x2a\x2b]\x00)"#),
    sig("image/gif", 70, r#"GIF8"#),
    sig("image/jpeg", 52, r#"\xff\xd8"#),
    sig(
        "image/x-ms-bmp",
        50,
        r#"BM.{12}[\x0c\x28\x40\x6c\x7c\x80]\x00"#,
    ),
    sig("image/x-icon", 70, r#"\x00\x00\x01\x00"#),
    sig("image/x-cursor", 70, r#"\x00\x00\x02\x00"#),
    sig("image/vnd.adobe.photoshop", 70, r#"8BPS"#),
    sig("image/png", 110, r#"\x89PNG"#),
    sig("image/jp2", 60, r#".{4}ftypjp2"#),
    sig(
        "image/jp2",
        70,
        r#"\x00\x00\x00\x0cjP  \x0d\x0a\x87\x0a.{8}jp2 "#,
    ),
    sig(
        "image/jpx",
        70,
        r#"\x00\x00\x00\x0cjP  \x0d\x0a\x87\x0a.{8}jpx "#,
    ),
    sig(
        "image/jpm",
        70,
        r#"\x00\x00\x00\x0cjP  \x0d\x0a\x87\x0a.{8}jpm "#,
    ),
    sig("image/x-xcursor", 70, r#"Xcur"#),
    sig("image/x-niff", 70, r#"IIN1"#),
    sig("image/x-exr", 70, r#"\x76\x2f\x31\x01"#),
    sig("image/x-dpx", 70, r#"SDPX"#),
    sig("image/x-cpi", 70, r#"(CPC\xb2)"#),
    sig("image/x-olympus-orf", 70, r#"IIR[OS]|MMOR"#),
    sig("image/x-x3f", 70, r#"FOVb"#),
    sig("image/x-paintnet", 70, r#"PDN3"#),
    sig("image/x-coreldraw", 70, r#"RIFF....CDR[A6]"#),
    sig("image/x-portable-pixmap", 50, r#"P7"#),
    sig("image/jp2", 50, r#"....jP"#),
    sig("image/vnd.djvu", 70, r#"AT\x26TFORM.{4}(DJV[MUI]|THUM)"#),
    sig("image/vnd.dwg", 90, r#"(AC[12]\.|AC10)"#),
    sig("image/x-xcf", 110, r#"gimp xcf"#),
    sig(
        "image/x-polar-monitor-bitmap",
        160,
        r#"\x5bBitmapInfo2\x5d"#,
    ),
    sig("image/x-award-bmp", 20, r#"AWBM"#),
    sig("image/x-award-bioslogo", 50, r#"\x11[\x06\x09]"#),
    sig("image/webp", 70, r#"RIFF.{4}WEBP"#),
    // audio.sig
    sig(
        "audio/mpeg",
        20,
        r#"\xff[\xe2\xe3\xf2\xf3\xf6\xf7\xfa\xfb\xfc\xfd]"#,
    ),
    sig("audio/m4a", 70, r#"....ftyp(m4a)"#),
    // video.sig
    sig("video/x-flv", 60, r#"FLV"#),
    sig("video/x-fli", 50, r#".{4}\x11\xaf"#),
    sig("video/x-flc", 50, r#".{4}\x12\xaf"#),
    sig(
        "video/mj2",
        70,
        r#"\x00\x00\x00\x0cjP  \x0d\x0a\x87\x0a.{8}mjp2"#,
    ),
    sig("video/x-mng", 70, r#"\x8aMNG"#),
    sig("video/x-jng", 70, r#"\x8bJNG"#),
    sig("video/mpeg", 50, r#"(\x00\x00\x01[\xb0-\xbb])"#),
    sig("video/mpv", 71, r#"(\x00\x00\x01\xb3)"#),
    sig(
        "video/h264",
        41,
        r#"(\x00\x00\x00\x01)([\x07\x27\x47\x67\x87\xa7\xc7\xe7])"#,
    ),
    sig(
        "video/webm",
        70,
        r#"(\x1a\x45\xdf\xa3)(.*)(B\x82)(.{1})(webm)"#,
    ),
    sig(
        "video/x-matroska",
        110,
        r#"(\x1a\x45\xdf\xa3)(.*)(B\x82)(.{1})(matroska)"#,
    ),
    sig(
        "video/mp2p",
        21,
        r#"\x00\x00\x01\xba([\x40-\x7f\xc0-\xff])"#,
    ),
    sig("video/x-sgi-movie", 70, r#"MOVI"#),
    sig("video/quicktime", 70, r#"....(mdat|moov)"#),
    sig("video/mp4", 70, r#"....ftyp(isom|mp4[12])"#),
    sig("video/3gpp", 60, r#"....ftyp(3g[egps2]|avc1|mmp4)"#),
    // font.sig
    sig("application/font-woff2", 70, r#"wOF2"#),
    sig("application/font-woff", 70, r#"wOFF"#),
    sig("application/x-font-ttf", 80, r#"\x00\x01\x00\x00\x00"#),
    sig("application/vnd.ms-fontobject", 50, r#".{34}LP"#),
    sig("application/vnd.ms-opentype", 70, r#"OTTO"#),
    sig("application/x-mif", 190, r#"\x3cMakerScreenFont"#),
    sig(
        "application/vnd.font-fontforge-sfd",
        160,
        r#"SplineFontDB\x3a"#,
    ),
    // libmagic.sig (a subset)
    sig(
        "application/pgp-keys",
        330,
        r#"(.{2})(\x2d\x2d\x2dBEGIN PGP PUBLIC KEY BLOCK\x2d)"#,
    ),
    sig(
        "application/pgp-signature",
        280,
        r#"(\x2d\x2d\x2d\x2d\x2dBEGIN PGP SIGNATURE\x2d)"#,
    ),
    sig(
        "application/pgp",
        260,
        r#"(\x2d\x2d\x2d\x2d\x2dBEGIN PGP MESSAGE\x2d)"#,
    ),
    sig("text/calendar", 180, r#"(BEGIN\x3aVCALENDAR)"#),
    sig("message/rfc822", 170, r#"(Relay\x2dVersion\x3a)"#),
    sig(
        "message/rfc822",
        160,
        r#"([dD][eE][lL][iI][vV][eE][rR][eE][dD]\x2d[tT][oO]\x3a)"#,
    ),
    sig(
        "message/rfc822",
        150,
        r#"([rR][eE][tT][uU][rR][nN]\x2d[pP][aA][tT][hH]\x3a)"#,
    ),
    sig("text/x-shellscript", 150, r#"(\x23\x21 ?\x2fbin\x2fbash)"#),
    sig("application/x-bittorrent", 140, r#"(d8\x3aannounce)"#),
    sig("text/x-vcard", 140, r#"(BEGIN\x3aVCARD)"#),
    sig("message/rfc822", 130, r#"(Forward to)"#),
    sig("text/x-shellscript", 130, r#"(\x23\x21 ?\x2fbin\x2fsh)"#),
    sig("message/rfc822", 120, r#"(Received\x3a)"#),
    sig(
        "application/msword",
        110,
        r#"(\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1)"#,
    ),
    sig("image/png", 110, r#"(\x89PNG\x0d\x0a\x1a\x0a)"#),
    sig("application/x-tar", 110, r#"(.{257})(ustar  \x00)"#),
    sig("application/zip", 110, r#"(PK\x07\x08PK\x03\x04)"#),
    sig("message/news", 100, r#"(Article)"#),
    sig("message/rfc822", 100, r#"(Pipe to)"#),
    sig("application/x-archive", 100, r#"(\x21\x3carch\x3e)"#),
    sig("application/x-tar", 90, r#"(.{257})(ustar\x00)"#),
    sig("application/pdf", 80, r#"(\x25PDF\x2d)"#),
];
