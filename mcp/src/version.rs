//! Protocol versions and the two eras they belong to.

use std::fmt;

/// The two eras of MCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2026-07-28 and later: stateless, every request carries its `_meta`
    /// envelope.
    Modern,
    /// 2025-11-25 back to 2024-11-05: the `initialize` handshake opens a
    /// session with a negotiated version and capabilities.
    Handshake,
}

/// A protocol version arbor speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// 2024-11-05 (handshake; legacy HTTP+SSE transport).
    V2024_11_05,
    /// 2025-03-26 (handshake; Streamable HTTP; JSON-RPC batches).
    V2025_03_26,
    /// 2025-06-18 (handshake; batches removed, structured tool output).
    V2025_06_18,
    /// 2025-11-25 (handshake; the last of its era).
    V2025_11_25,
    /// 2026-07-28 (stateless).
    V2026_07_28,
}

impl ProtocolVersion {
    /// Every version, oldest first.
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::V2024_11_05,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2026_07_28,
    ];

    /// The newest version.
    pub const LATEST: ProtocolVersion = ProtocolVersion::V2026_07_28;

    /// The newest handshake-era version: what `initialize` answers with when
    /// the client asks for one arbor does not speak.
    pub const LATEST_HANDSHAKE: ProtocolVersion = ProtocolVersion::V2025_11_25;

    /// The version as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2024_11_05 => "2024-11-05",
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    /// Reads a version from the wire; `None` for one arbor does not speak.
    pub fn parse(s: &str) -> Option<ProtocolVersion> {
        ProtocolVersion::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The era the version belongs to.
    pub fn era(self) -> Era {
        if self >= ProtocolVersion::V2026_07_28 {
            Era::Modern
        } else {
            Era::Handshake
        }
    }

    /// The version a server answers `initialize` with when a client asks for
    /// `requested`: a handshake-era version it knows is echoed; any other is
    /// answered with the newest handshake version, never echoed back.
    pub fn negotiate_handshake(requested: &str) -> ProtocolVersion {
        ProtocolVersion::parse(requested)
            .filter(|v| v.era() == Era::Handshake)
            .unwrap_or(ProtocolVersion::LATEST_HANDSHAKE)
    }

    /// Whether JSON-RPC batches are allowed (2025-03-26 only).
    pub fn allows_batches(self) -> bool {
        self == ProtocolVersion::V2025_03_26
    }

    /// The versions of one era, newest first, as written on the wire.
    pub fn supported(era: Era) -> Vec<&'static str> {
        ProtocolVersion::ALL
            .into_iter()
            .rev()
            .filter(|v| v.era() == era)
            .map(ProtocolVersion::as_str)
            .collect()
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
