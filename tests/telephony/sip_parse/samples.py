"""Real-world-shaped SIP messages and SDP bodies (as sipp, baresip, Asterisk and Kamailio send them)."""

from __future__ import annotations


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def message(head: str, body: str = "", *, length: int | None = None) -> bytes:
    """A message with CRLF line ends; Content-Length is the body's unless `length` says otherwise."""
    data = body.encode()
    size = len(data) if length is None else length
    return crlf(head.rstrip("\n") + f"\nContent-Length: {size}\n\n").encode() + data


SIPP_SDP = crlf(
    """v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
"""
)

BARESIP_SDP = crlf(
    """v=0
o=- 2137925421 3062128226 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 10334 RTP/AVP 96 9 0 8 101 102
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/48000
a=fmtp:101 0-15
a=rtpmap:102 telephone-event/8000
a=fmtp:102 0-15
a=ptime:20
a=rtcp-mux
a=sendrecv
"""
)

ASTERISK_SDP = crlf(
    """v=0
o=root 1766398102 1766398102 IN IP4 10.0.0.1
s=Asterisk PBX 20.5.0
c=IN IP4 10.0.0.1
t=0 0
m=audio 17654 RTP/AVP 0 8 3 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
"""
)

SIPP_INVITE = message(
    """INVITE sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-1-0
From: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag001
To: service <sip:service@127.0.0.1:5060>
Call-ID: 1-4242@127.0.0.1
CSeq: 1 INVITE
Contact: sip:sipp@127.0.0.1:5061
Max-Forwards: 70
Subject: Performance Test
Content-Type: application/sdp""",
    SIPP_SDP,
)

BARESIP_INVITE = message(
    """INVITE sip:agent@127.0.0.1:5080 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:36147;branch=z9hG4bK0b8a0b6f3b1e2c8b;rport
Contact: <sip:baresip-0x55d1@127.0.0.1:36147>
Max-Forwards: 70
To: <sip:agent@127.0.0.1:5080>
From: <sip:baresip@127.0.0.1>;tag=6a0a7c8d8e2d1a1b
Call-ID: 5c0a4e8f1e2d3c4b
CSeq: 27419 INVITE
User-Agent: baresip v1.0.0 (x86_64/linux)
Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER
Supported: replaces,norefersub
Content-Type: application/sdp""",
    BARESIP_SDP,
)

# Asterisk behind Kamailio: a folded comma list of two Vias, one more Via, Record-Route, a folded Allow.
ASTERISK_VIA_KAMAILIO_INVITE = message(
    """INVITE sip:agent@10.0.0.5:5060 SIP/2.0
Record-Route: <sip:10.0.0.2;lr;ftag=as6a1b2c3d>
Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKcydzigwkX, SIP/2.0/UDP 10.0.0.1:5060;rport=5060;
    received=10.0.0.1;branch=z9hG4bKPj8c1e
Via: SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKv6;received=2001:db8::1;rport=5070
From: "Alice \\"Ali\\" Smith" <sip:1001@10.0.0.1>;tag=as6a1b2c3d
To: <sip:agent@10.0.0.2>
Contact: <sip:asterisk@10.0.0.1:5060>
Call-ID: 3848276298220188511@10.0.0.1
CSeq: 102 INVITE
User-Agent: Asterisk PBX 20.5.0
Max-Forwards: 69
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE,
 REFER, SUBSCRIBE, NOTIFY, INFO, PUBLISH, MESSAGE
Supported: replaces, timer
Content-Type: application/sdp""",
    ASTERISK_SDP,
)

KAMAILIO_OPTIONS_COMPACT = message(
    """OPTIONS sip:[2001:db8::5]:5080;transport=udp SIP/2.0
v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK5c1b.000000000000000000000000000000
t: <sip:[2001:db8::5]:5080>
f: <sip:dispatcher@localhost>;tag=8a9c6b1d
i: 0a1b2c3d-4e5f@127.0.0.1
CSeq: 10 OPTIONS
m: <sip:dispatcher@127.0.0.1:5060>
k: path
Max-Forwards: 70"""
)

ASTERISK_200_OK = message(
    """SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5080;rport=5080;received=127.0.0.1;branch=z9hG4bKPjabc
Call-ID: 77f3a0@127.0.0.1
From: <sip:agent@127.0.0.1>;tag=deadbeef
To: <sip:1001@127.0.0.1>;tag=as1234
CSeq: 2 BYE
Server: Asterisk PBX 20.5.0
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE"""
)

ALL_MESSAGES = [
    SIPP_INVITE,
    BARESIP_INVITE,
    ASTERISK_VIA_KAMAILIO_INVITE,
    KAMAILIO_OPTIONS_COMPACT,
    ASTERISK_200_OK,
]
