"""SIP user agent server for voxline: message and SDP parsing, digest auth, transport and dialogs.

`message` parses and builds SIP messages (RFC 3261 §7, §20, §25), `sdp` parses offers and builds
answers (RFC 3264 / RFC 4566), `digest` answers authentication challenges (RFC 2617 / RFC 7616).
The parsers never trust their input: anything malformed raises `SipParseError` / `SdpError` with the
status a UAS should answer, and parsing stays linear in the size of the input.
"""
