package namespaces

import (
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// PortPolicy is what a sandbox's network namespace enforces: the
// destination ports of connections and datagrams (Connect), and the local
// ports that accept them (Bind). nil means unrestricted in that direction;
// an empty, non-nil list means nothing (--net none).
type PortPolicy struct {
	Connect, Bind []int
	// Complain: the refusing rules only count; what they would refuse
	// passes (clawos-run --complain).
	Complain bool
	// Table is the nftables table Install creates; NftTable when empty.
	// Containers that share a network namespace (a Kubernetes pod) each
	// install a table of their own: a packet must pass every table's
	// chains, so together they allow the ports all of them allow.
	Table string
}

func (p *PortPolicy) table() string {
	if p.Table == "" {
		return NftTable
	}
	return p.Table
}

// Ruleset renders the policy as nft text (see NftRuleset).
func (p *PortPolicy) Ruleset() string { return nftRuleset(p.Connect, p.Bind, p.Complain) }

// Install installs the policy in the network namespace netns over netlink,
// from this process: no nsenter and nft processes. It needs CAP_NET_ADMIN
// over that namespace without joining its user namespace (which a
// multi-threaded process cannot), so it is root's path; a non-root caller
// loads Ruleset with nft inside the namespace instead.
func (p *PortPolicy) Install(netns *os.File) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(netns.Fd())))
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "netlink to the sandbox's network namespace")
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: p.table()})
	chain := func(name string, hook *nftables.ChainHook, ports []int) {
		if ports == nil {
			return
		}
		accept := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook,
			Priority: nftables.ChainPriorityFilter, Policy: &accept})
		rule := func(e ...expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e}) }
		// ct state established,related accept
		rule(&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
				Xor:  binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Verdict{Kind: expr.VerdictAccept})
		if len(ports) > 0 {
			for _, typ := range ndTypes[name] { // icmpv6 type T accept
				rule(l4proto(unix.IPPROTO_ICMPV6), l4protoIs(unix.IPPROTO_ICMPV6),
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
					&expr.Verdict{Kind: expr.VerdictAccept})
			}
		}
		for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			for _, port := range ports { // {tcp,udp} dport PORT accept
				rule(l4proto(proto), l4protoIs(proto),
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(port))},
					&expr.Verdict{Kind: expr.VerdictAccept})
			}
		}
		refuse := func(e ...expr.Any) []expr.Any {
			if p.Complain {
				return e[:len(e)-1] // count only
			}
			return e
		}
		rule(refuse(l4proto(unix.IPPROTO_TCP), l4protoIs(unix.IPPROTO_TCP), &expr.Counter{},
			&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})...)
		rule(refuse(l4proto(unix.IPPROTO_UDP), l4protoIs(unix.IPPROTO_UDP), &expr.Counter{},
			&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH})...)
		// Every other layer-4 protocol (and, without ports, everything).
		rule(refuse(&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})...)
	}
	chain("output", nftables.ChainHookOutput, p.Connect)
	chain("input", nftables.ChainHookInput, p.Bind)
	if err := c.Flush(); err != nil {
		return &clawerr.Error{Code: clawerr.EPerm, Message: "cannot install the port restrictions in the sandbox's network namespace; the agent was not started", Err: err}
	}
	return nil
}

// DeleteTable removes the nftables table a PortPolicy installed in netns;
// a table that is not there is not an error.
func DeleteTable(netns *os.File, table string) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(netns.Fd())))
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "netlink to the network namespace")
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "list nftables tables")
	}
	for _, t := range tables {
		if t.Name == table {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return clawerr.Wrap(clawerr.EIO, err, "delete nftables table "+table)
			}
		}
	}
	return nil
}

func l4proto(byte) *expr.Meta { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1} }

func l4protoIs(p byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}} }

// RefusedNetlink sums the packets counted by the reject and drop rules of
// the policy installed in netns.
func RefusedNetlink(netns *os.File) (int, error) {
	// One netlink socket for both chains (a socket per request would join
	// the namespace again each time).
	c, err := nftables.New(nftables.WithNetNSFd(int(netns.Fd())), nftables.AsLasting())
	if err != nil {
		return 0, err
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: NftTable}
	n := 0
	for _, name := range []string{"output", "input"} {
		rules, err := c.GetRules(t, &nftables.Chain{Name: name, Table: t})
		if err != nil {
			continue // the chain does not exist in this policy
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					n += int(ctr.Packets)
				}
			}
		}
	}
	return n, nil
}
