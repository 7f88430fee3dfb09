// Package cluster is peersession's network layer: it keeps a membership
// list of app instances with hashicorp/memberlist (failure detection, a
// per-cluster label, an encryption keyring, unique per-start node names,
// periodic re-join of seeds) and moves opaque, authenticated frames between
// them over one kept-open, Noise-secured TCP stream per peer and direction.
//
// cluster knows nothing of sessions. A Node reports peers coming and going
// and delivers frames to a Handler; Node.Send writes a frame to one peer.
//
// # Streams
//
// Every node listens on Config.StreamPort and advertises that address in its
// memberlist metadata. To send, a node dials one outgoing connection per
// peer (lazily, on the first Send, and again after a failure, with
// exponential backoff). Incoming connections are read-only: a receiver
// answers on its own outgoing connection, so a pair of nodes shares two TCP
// connections.
//
// A connection starts with a Noise NNpsk0 handshake
// (Noise_NNpsk0_25519_ChaChaPoly_SHA256) whose pre-shared key is derived
// from a keyring key and whose prologue is "peersession/1" followed by the
// cluster Label. The initiator uses the primary key; the responder tries
// every key on the ring. Because the first handshake message can be
// replayed, the initiator then sends an encrypted confirmation message
// (its peer ID and a random value) and the responder trusts the connection
// only once that decrypts. The first message's payload and the answer
// carry each side's range of wire formats (Config.Formats; see
// formats.go): a peer with none in common is refused, a peer that
// announces none (a release before ranges) speaks format 1. With no keys (loopback or Insecure dev mode) the
// same code path runs with a PSK derived from the label alone: that PSK is
// not secret and gives no protection.
//
// # Before authentication
//
// What a client without the key can make a node hold is bounded (see
// Limits): incoming gossip TCP connections pass a guard around
// memberlist's transport that admits them by source IP, members' addresses
// first, and ends each at a byte cap, a deadline and a minimum rate;
// incoming stream connections in their handshake are admitted the same
// way and must send the first handshake message promptly. memberlist's
// log lines are held back per kind, one per 10s.
//
// # Wire format (permanent; message types are append-only)
//
//	connection preamble  "PSN" version(1)
//	every Noise message  uint16 big-endian length, then the message
//	handshake            msg1 (initiator: psk, e; empty payload)
//	                     msg2 (responder: e, ee; payload = responder peer ID)
//	transport messages   plaintext = type byte, then payload
//	  msgConfirm (1)     16 random bytes, then initiator peer ID (first message only)
//	  msgData (2)        last (or only) chunk of a frame
//	  msgDataMore (3)    a chunk; more chunks of the same frame follow
//	  msgLeaving (4)     the sender is leaving gracefully (sent by Leave)
//
// Frames larger than one Noise message are chunked and reassembled up to
// Config.MaxFrame bytes.
package cluster
