//! conn.log `history`: upper case for the originator, lower case for the responder; some
//! letters once per direction, some repeated on new sequence numbers, some logarithmic.

/// Longest history kept; the letters that can repeat are bounded by this.
const MAX_LEN: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct History {
    text: String,
    /// Letters already recorded; the responder's bits are shifted up by 16.
    seen: u32,
}

/// Per-endpoint bits of letters recorded at most once.
pub mod bits {
    pub const SYN: u32 = 0x1;
    pub const FIN: u32 = 0x2;
    pub const RST: u32 = 0x4;
    pub const FIN_RST: u32 = 0x8;
    pub const DATA: u32 = 0x10;
    pub const ACK: u32 = 0x20;
    pub const MULTI_FLAG: u32 = 0x40;
    /// Zeek's `HIST_UNKNOWN_PKT`, whose 'X' marks an analysis cut short by a limit.
    pub const UNKNOWN: u32 = 0x400;
}

/// A logarithmic counter: the letter is added on the 1st, 10th, 100th ... occurrence.
#[derive(Debug, Clone, Copy)]
pub struct Scaled {
    count: u32,
    threshold: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled {
            count: 0,
            threshold: 1,
        }
    }
}

impl History {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn add(&mut self, code: char) {
        if self.text.len() < MAX_LEN {
            self.text.push(code);
        }
    }

    fn code(orig: bool, code: char) -> char {
        if orig {
            code.to_ascii_uppercase()
        } else {
            code.to_ascii_lowercase()
        }
    }

    /// Adds the letter the first time; returns true if it was already recorded.
    pub fn check(&mut self, orig: bool, mask: u32, code: char) -> bool {
        let mask = if orig { mask } else { mask << 16 };
        if self.seen & mask == 0 {
            self.seen |= mask;
            self.add(Self::code(orig, code));
            false
        } else {
            true
        }
    }

    /// Adds the letter unconditionally (repeated SYN/FIN/RST with a new sequence number).
    pub fn add_dir(&mut self, orig: bool, code: char) {
        self.add(Self::code(orig, code));
    }

    pub fn scaled(&mut self, orig: bool, code: char, counter: &mut Scaled) {
        counter.count = counter.count.saturating_add(1);
        if counter.count == counter.threshold {
            self.add(Self::code(orig, code));
            counter.threshold = counter.threshold.saturating_mul(10);
        }
    }

    /// Roles were swapped: the seen bits follow the endpoints, and `^` marks the flip.
    pub fn flip(&mut self) {
        self.seen = self.seen.rotate_left(16);
        self.add('^');
    }

    /// Roles were swapped after a SYN-ACK began the connection: the letters recorded so far
    /// change case with their endpoint's new role and `^` leads, as Zeek's history reads then.
    pub fn flip_recorded(&mut self) {
        self.seen = self.seen.rotate_left(16);
        let swapped: String = self
            .text
            .chars()
            .map(|c| {
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        self.text = format!("^{swapped}");
    }

    /// Roles were swapped by an application analyzer (Zeek's `Connection::FlipRoles`): `^`
    /// marks the flip; the letters already recorded stay recorded for their role, not for
    /// the endpoint that sent them.
    pub fn mark_flip(&mut self) {
        self.add('^');
    }
}
