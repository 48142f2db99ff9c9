package namespaces

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// NftTable is the nftables table clawos-run installs in a sandbox's network
// namespace.
const NftTable = "clawos"

// NftRuleset renders the port policy of a sandbox as an nftables ruleset for
// its own network namespace. connect lists the destination ports the agent
// may connect or send to (TCP and UDP), bind the local ports it may accept
// connections and datagrams on; nil means unrestricted in that direction,
// and an empty list (--net none) means no traffic of any protocol.
//
// Replies of allowed connections pass first (ct state established,related):
// a rule that only looked at destination ports would also reject a local
// listener's SYN-ACK, whose destination is the client's ephemeral port.
// IPv6 neighbour discovery passes (the kernel's own, on-link; without it no
// IPv6 route works on a real link). Everything else is refused, whatever
// its layer-4 protocol: TCP with a reset and UDP with an ICMP port
// unreachable, so that connect fails at once with ECONNREFUSED; every other
// protocol (UDP-Lite, SCTP, ICMP, MPTCP's subflows are TCP) is dropped,
// which fails the sending call at once with EPERM. The refusing rules
// count what they refuse (see RefusedPackets).
func NftRuleset(connect, bind []int) string { return nftRuleset(connect, bind, false) }

// ndTypes are the ICMPv6 neighbour-discovery messages a policy lets pass:
// router solicitation, neighbour solicitation and advertisement (133, 135,
// 136), and router advertisement (134) on input.
var ndTypes = map[string][]byte{"output": {133, 135, 136}, "input": {134, 135, 136}}

// nftRuleset is NftRuleset; with complain, the refusing rules only count
// (clawos-run --complain: what the policy would refuse passes).
func nftRuleset(connect, bind []int, complain bool) string {
	refuse := func(verdict string) string {
		if complain {
			return ""
		}
		return " " + verdict
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", NftTable)
	chain := func(name, hook string, ports []int) {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority filter; policy accept;\n", name, hook)
		b.WriteString("\t\tct state established,related accept\n")
		// One rule per ICMPv6 type and per port, in the order Install
		// adds them over netlink: the kernel holds the same ruleset either
		// way (TestPortPolicyRenderings).
		if len(ports) > 0 {
			for _, t := range ndTypes[name] {
				fmt.Fprintf(&b, "\t\ticmpv6 type %d accept\n", t)
			}
		}
		for _, proto := range []string{"tcp", "udp"} {
			for _, p := range ports {
				fmt.Fprintf(&b, "\t\t%s dport %d accept\n", proto, p)
			}
		}
		fmt.Fprintf(&b, "\t\tmeta l4proto tcp counter%s\n", refuse("reject with tcp reset"))
		fmt.Fprintf(&b, "\t\tmeta l4proto udp counter%s\n", refuse("reject"))
		// Every other protocol, and with no port at all everything.
		fmt.Fprintf(&b, "\t\tcounter%s\n", refuse("drop"))
		b.WriteString("\t}\n")
	}
	if connect != nil {
		chain("output", "output", connect)
	}
	if bind != nil {
		chain("input", "input", bind)
	}
	b.WriteString("}\n")
	return b.String()
}

var counterRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`counter packets (\d+) bytes \d+`) })

// RefusedPackets sums the counters in the output of `nft list table inet
// clawos`: only the refusing rules count (reject, drop, or in complain mode
// the rules that stand in for them), so this is the packets the port policy
// refused or would have refused (for TCP, one per connection attempt and
// retransmission).
func RefusedPackets(listing string) int {
	n := 0
	for _, m := range counterRe().FindAllStringSubmatch(listing, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}
