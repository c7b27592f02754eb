package config

import (
	"slices"
	"strings"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/internal/strictyaml"
	"github.com/assertd/assertd/remediations"
)

// crossCheck checks what files say about each other: unique names, and that
// every name an assert or remediation refers to exists.
func crossCheck(set *Set, cfgPos *strictyaml.Positions) strictyaml.Errors {
	var errs strictyaml.Errors
	cfg := set.Config

	assertNames := map[string]strictyaml.Pos{}
	var assertList []string
	for _, a := range set.Asserts {
		if first, dup := assertNames[a.Name]; dup && a.Name != "" {
			errs.Add(a.Loc.At("name"), "%s", firstAt("assert", a.Name, first))
			continue
		}
		assertNames[a.Name] = a.Pos
		assertList = append(assertList, a.Name)
	}
	hbNames := map[string]strictyaml.Pos{}
	var hbList []string
	for _, h := range set.Heartbeats {
		if first, dup := hbNames[h.Name]; dup && h.Name != "" {
			errs.Add(h.Pos, "%s", firstAt("heartbeat", h.Name, first))
			continue
		}
		hbNames[h.Name] = h.Pos
		hbList = append(hbList, h.Name)
	}
	errs.Append(checkPingAuth(set))
	errs.Append(crossCluster(set, cfgPos))
	remNames := map[string]strictyaml.Pos{}
	var remList []string
	for _, r := range set.Remediations {
		if first, dup := remNames[r.Name]; dup && r.Name != "" {
			errs.Add(r.Loc.At("name"), "%s", firstAt("remediation", r.Name, first))
			continue
		}
		remNames[r.Name] = r.Pos
		remList = append(remList, r.Name)
	}

	var policies, sources []string
	if cfg != nil {
		for _, p := range cfg.EscalationPolicies {
			policies = append(policies, p.Name)
		}
		sources = append(sources, EmbeddedName)
		for _, s := range cfg.Sources.Prometheus {
			sources = append(sources, s.Name)
		}
	}
	checkHeartbeats := cfg != nil || len(set.Heartbeats) > 0

	users := map[string][]*asserts.Compiled{} // remediation → asserts that use it
	for _, a := range set.Asserts {
		if a.Remediate != "" {
			if _, ok := remNames[a.Remediate]; !ok {
				errs.Add(a.Loc.At("remediate"), "unknown remediation %q%s; the remediations are: %s", a.Remediate,
					strictyaml.DidYouMean(a.Remediate, remList), list(remList, "none (add a remediations: file to files:)"))
			} else {
				users[a.Remediate] = append(users[a.Remediate], a)
			}
		}
		if cfg != nil {
			switch {
			case a.Escalate != "" && !slices.Contains(policies, a.Escalate):
				errs.Add(a.Loc.At("escalate"), "unknown escalation policy %q%s; the policies are: %s", a.Escalate,
					strictyaml.DidYouMean(a.Escalate, policies), list(policies, "none (add escalation_policies: to the config)"))
			case a.Escalate == "" && cfg.Defaults.Escalate == "":
				errs.Add(a.Loc.At(), "assert %q names no escalation policy and the config sets no defaults.escalate: nobody would be paged; add escalate: <policy>", a.Name)
			}
			if a.Source != "" && !slices.Contains(sources, a.Source) {
				errs.Add(a.Loc.At("source"), "unknown source %q%s; the sources are: %s", a.Source,
					strictyaml.DidYouMean(a.Source, sources), list(sources, ""))
			}
		}
		if checkHeartbeats {
			for _, ref := range a.Heartbeats {
				if _, ok := hbNames[ref.Name]; !ok {
					errs.Add(ref.Pos, "unknown heartbeat %q%s; declare it under heartbeats: (the heartbeats are: %s)", ref.Name,
						strictyaml.DidYouMean(ref.Name, hbList), list(hbList, "none"))
				}
			}
		}
	}

	for _, r := range set.Remediations {
		for _, refs := range [][]remediations.Ref{r.VerifyAsserts, r.GuardAsserts} {
			for _, ref := range refs {
				if _, ok := assertNames[ref.Name]; !ok {
					errs.Add(ref.Pos, "unknown assert %q%s", ref.Name, strictyaml.DidYouMean(ref.Name, assertList))
				}
			}
		}
		// An expression verify reads the values of the assert that triggered
		// the run, so it must compile against each assert that uses r.
		for _, ref := range r.VerifyExprs {
			for _, a := range users[r.Name] {
				if _, _, err := assertd.CompileExpr(ref.Name, asserts.Env(a.QueryNames()), asserts.EnvHeartbeat); err != nil {
					errs.Add(ref.Pos, "verify expr, for assert %q which uses this remediation: %v", a.Name, err)
				}
			}
		}
	}
	return errs
}

// checkPingAuth refuses, when the config is known, a heartbeat that anyone
// reaching the listener could ping without saying so (public: true), and
// uuids that two heartbeats share.
func checkPingAuth(set *Set) strictyaml.Errors {
	var errs strictyaml.Errors
	uuids := map[string]strictyaml.Pos{}
	for _, h := range set.Heartbeats {
		if h.UUID == "" {
			continue
		}
		if first, dup := uuids[h.UUID]; dup {
			errs.Add(h.Pos, "heartbeat %q has the uuid of the heartbeat at %s: each heartbeat needs its own (uuidgen -r)", h.Name, first)
			continue
		}
		uuids[h.UUID] = h.Pos
	}
	if set.Config == nil || set.Config.Pings.HasKey() {
		return errs
	}
	for _, h := range set.Heartbeats {
		if h.Heartbeat == nil || h.HasCredential() || h.Public {
			continue
		}
		if h.Create != nil {
			errs.Add(h.Pos, "heartbeat %q: create: takes pings with the project ping key only: set it in assertd.yaml (pings: {key_env: ASSERTD_PING_KEY})", h.Name)
			continue
		}
		hint := ""
		if asserts.IsUUID(strings.ToLower(h.Name)) {
			hint = " (a UUID as the name is no secret: names are shown in the UI, the API and /metrics; write a readable name and the UUID as uuid:)"
		}
		errs.Add(h.Pos, "heartbeat %q takes pings from anyone who reaches the listener%s: give it a key (key_env: VARIABLE or key_file: PATH) or a random uuid:, "+
			"or set the project ping key in assertd.yaml (pings: {key_env: ASSERTD_PING_KEY}); write public: true to accept pings without a key", h.Name, hint)
	}
	return errs
}

func list(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	return listOrNone(names)
}
