package oidc

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// randomHex returns n random bytes, hex encoded. crypto/rand.Read never fails (Go 1.24+).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomUUID returns a version 4 UUID, the shape GitHub uses for "jti".
func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// stableNumber maps seed to a decimal string of exactly digits digits (digits ≤ 18), so
// derived ids (repository_id, actor_id, project numbers) stay the same across runs.
func stableNumber(seed string, digits int) string {
	sum := sha256.Sum256([]byte(seed))
	lo := uint64(1)
	for range digits - 1 {
		lo *= 10
	}
	v := binary.BigEndian.Uint64(sum[:8])%(9*lo) + lo
	return strconv.FormatUint(v, 10)
}

// randReader is the entropy source for key generation.
var randReader io.Reader = rand.Reader
