//! The server's rules for names: input cleaning, the renames an upload applies, how names are
//! stored (3-byte UTF-8 columns), how they appear in URLs and keywords. Pure functions, so the
//! quirks the transcripts show can be tested one by one.

/// Trims and removes HTML tags, as the server does to every request parameter.
pub fn clean_input(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_tag = false;
    for c in raw.chars() {
        match c {
            '<' if !in_tag => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// What a utf8 (3-byte) database column keeps of a name: every character outside the BMP
/// becomes one `?` per UTF-8 byte (`🚀` → `????`).
pub fn stored_form(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if (c as u32) > 0xFFFF {
            out.extend(std::iter::repeat_n('?', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters the `fileType` column holds (a MySQL `varchar(140)`): the server cuts longer
/// values silently, by characters, not bytes.
const FILE_TYPE_CHARS: usize = 140;

/// What the `fileType` column keeps of a cleaned `file/edit` value: the same utf8 column rules
/// as names (text outside the BMP becomes `?`s), then the first 140 characters, so multi-byte
/// text is never split inside a character.
pub fn stored_file_type(value: &str) -> String {
    stored_form(value).chars().take(FILE_TYPE_CHARS).collect()
}

/// The part of a multipart filename after the last `/` or `\` (PHP drops the path).
pub fn base_name(raw: &str) -> &str {
    raw.rsplit(['/', '\\']).next().unwrap_or(raw)
}

/// The extension the server records: the lower-cased text after the last dot (the whole name
/// when there is none), cut to the 10 characters the column holds.
pub fn extension_of(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    last.to_lowercase().chars().take(10).collect()
}

/// The upload's first rename: a leading dot removed, then trimmed; an empty name becomes the
/// upload time (`YmdhI`, 12-hour clock, as PHP's `date('Ymdhi')`).
pub fn upload_base(raw: &str, now: chrono::DateTime<chrono::Local>) -> String {
    let without_dot = raw.strip_prefix('.').unwrap_or(raw);
    let trimmed = without_dot.trim();
    if trimmed.is_empty() {
        now.format("%Y%m%d%I%M").to_string()
    } else {
        trimmed.to_string()
    }
}

/// The `tracker`-th duplicate of `name`: the name cut by its extension's length plus one, then
/// ` (N).ext`. For a name without a dot the cut eats one real character, which is how
/// `Makefile` becomes `Makefil (2).makefile`.
pub fn duplicate_name(name: &str, tracker: u32) -> String {
    let ext = name.rsplit('.').next().unwrap_or(name).to_lowercase();
    let chars: Vec<char> = name.chars().collect();
    let keep = chars.len() as i64 - ext.chars().count() as i64 - 1;
    let stem: String = if keep > 0 {
        chars[..keep as usize].iter().collect()
    } else {
        // PHP's substr with a negative length drops that many characters from the end.
        let drop = (-keep) as usize;
        if keep == 0 || drop >= chars.len() {
            String::new()
        } else {
            chars[..chars.len() - drop].iter().collect()
        }
    };
    format!("{stem} ({tracker}).{ext}")
}

/// The upload's last rename: double and single quotes, CR and LF removed.
pub fn make_safe(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\r' | '\n'))
        .collect()
}

/// A name as it appears in a file or folder URL: spaces, quotes and `%` become `_`; everything
/// else (including `/` and `?`) is kept, which is why a `?` breaks the URL.
pub fn url_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' ' | '"' | '\'' | '%' => '_',
            other => other,
        })
        .collect()
}

/// The search keywords stored at upload: the name lower-cased, split on spaces, dots,
/// underscores, dashes, brackets and commas.
pub fn keywords(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| c.is_whitespace() || "._-()[],".contains(c))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stripped_and_input_trimmed() {
        assert_eq!(
            clean_input("  a/b \"q\" 'x' <b>tag</b> & c  "),
            "a/b \"q\" 'x' tag & c"
        );
    }

    #[test]
    fn characters_outside_the_bmp_are_stored_as_question_marks() {
        assert_eq!(stored_form("é 日本 🚀.md"), "é 日本 ????.md");
    }

    #[test]
    fn file_types_are_cut_at_140_characters_not_bytes() {
        let ascii = "a".repeat(141);
        assert_eq!(stored_file_type(&ascii), ascii[..140]);
        assert_eq!(stored_file_type(&"é".repeat(150)), "é".repeat(140));
        assert_eq!(stored_file_type(&"日".repeat(141)), "日".repeat(140));
        assert_eq!(stored_file_type("inode/symlink"), "inode/symlink");
    }

    #[test]
    fn file_types_outside_the_bmp_become_question_marks_before_the_cut() {
        assert_eq!(stored_file_type("x 🚀"), "x ????");
        assert_eq!(stored_file_type(&"🚀".repeat(40)), "?".repeat(140));
    }

    #[test]
    fn the_path_part_of_a_multipart_filename_is_dropped() {
        assert_eq!(base_name("dir\\sub\\name.txt"), "name.txt");
        assert_eq!(base_name("a/b/c.txt"), "c.txt");
    }

    #[test]
    fn extension_is_lowercased_and_cut_to_ten_characters() {
        assert_eq!(extension_of("renamed file.TXT"), "txt");
        assert_eq!(extension_of("NoExtension"), "noextensio");
        assert_eq!(extension_of("Makefile"), "makefile");
    }

    #[test]
    fn upload_removes_one_leading_dot_and_names_empty_files_by_time() {
        let now = chrono::Local::now();
        assert_eq!(upload_base(".bashrc", now), "bashrc");
        assert_eq!(upload_base(".env.local", now), "env.local");
        assert_eq!(upload_base("  ", now).len(), 12);
    }

    #[test]
    fn duplicates_are_numbered_and_extensionless_names_mangled() {
        assert_eq!(duplicate_name("hello.txt", 2), "hello (2).txt");
        assert_eq!(duplicate_name("hello.txt", 3), "hello (3).txt");
        assert_eq!(duplicate_name("Makefile", 2), "Makefil (2).makefile");
        assert_eq!(duplicate_name("bashrc", 2), "bashr (2).bashrc");
    }

    #[test]
    fn safe_names_lose_quotes_and_line_breaks() {
        assert_eq!(make_safe("my 'sq' \"dq\"\r\n.txt"), "my sq dq.txt");
    }

    #[test]
    fn url_names_replace_spaces_quotes_and_percent() {
        assert_eq!(url_name("a/b \"q\" 'x' tag & c"), "a/b__q___x__tag_&_c");
        assert_eq!(
            url_name("my file sq %22dq%22 ünï.txt"),
            "my_file_sq__22dq_22_ünï.txt"
        );
    }

    #[test]
    fn keywords_split_the_name() {
        assert_eq!(keywords("hello (3).txt"), "hello,3,txt");
        assert_eq!(keywords("to_bad_folder.bin"), "to,bad,folder,bin");
        assert_eq!(keywords("Makefile"), "makefile");
    }
}
