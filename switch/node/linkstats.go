package node

import "github.com/poswitch/poswitch/switch/issuerlink"

// LinkStats returns the figures of an issuer's link: per endpoint in order of preference, its
// signed-on connections and the requests it carried. An issuer the node has no link to has none.
func (n *Node) LinkStats(issuer string) issuerlink.Stats {
	l := n.links[issuer]
	if l == nil {
		return issuerlink.Stats{}
	}
	return l.Stats()
}
