package cluster

import "hash/fnv"

// Owner returns which of replicas owns share by rendezvous (highest random
// weight) hashing: every replica scores every share, the highest score
// wins. When a replica leaves, only its shares move; when one joins, it
// takes about 1/n of the shares from the others. "" when replicas is empty.
func Owner(share string, replicas []string) string {
	best, owner := uint64(0), ""
	for _, r := range replicas {
		s := score(share, r)
		if owner == "" || s > best || (s == best && r < owner) {
			best, owner = s, r
		}
	}
	return owner
}

func score(share, replica string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(share))
	h.Write([]byte{0})
	h.Write([]byte(replica))
	return mix(h.Sum64())
}

// mix is MurmurHash3's 64-bit finaliser: FNV alone spreads close inputs poorly.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
