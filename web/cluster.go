package web

import (
	"net/http"
	"time"

	"github.com/assertd/assertd/cluster"
)

// Cluster is the replica's membership when several replicas share the
// store (cluster.Member).
type Cluster interface {
	Status() cluster.Status
	Ready() error
}

type clusterReplica struct {
	ID         string    `json:"id"`
	Address    string    `json:"address"`
	Started    time.Time `json:"started"`
	Renewed    time.Time `json:"renewed"`
	LeaseUntil time.Time `json:"lease_until"`
	Live       bool      `json:"live"`
	Self       bool      `json:"self"`
	Shares     int       `json:"shares"`
}

type clusterShare struct {
	Name  string    `json:"name"`
	Owner string    `json:"owner"`
	Epoch int64     `json:"epoch"`
	Since time.Time `json:"since"`
}

type clusterView struct {
	Enabled      bool             `json:"enabled"` // false: one process owns every assert
	Replica      string           `json:"replica,omitempty"`
	Ready        bool             `json:"ready"`
	NotReady     string           `json:"not_ready,omitempty"`
	Lease        string           `json:"lease,omitempty"`
	Renew        string           `json:"renew,omitempty"`
	LeaseUntil   time.Time        `json:"lease_until,omitzero"`
	Replicas     []clusterReplica `json:"replicas"`
	Shares       []clusterShare   `json:"shares"`
	Owned        []string         `json:"owned"`
	LastTakeover *struct {
		Share string    `json:"share"`
		From  string    `json:"from"`
		Epoch int64     `json:"epoch"`
		At    time.Time `json:"at"`
	} `json:"last_takeover,omitempty"`
}

func (s *server) clusterView() clusterView {
	v := clusterView{Replicas: []clusterReplica{}, Shares: []clusterShare{}, Owned: []string{}}
	if s.d.Cluster == nil {
		v.Ready = true
		return v
	}
	st := s.d.Cluster.Status()
	now := s.now()
	v.Enabled, v.Replica, v.Lease, v.Renew, v.LeaseUntil = true, st.Replica, st.Lease.String(), st.Renew.String(), st.LeaseUntil
	if err := s.d.Cluster.Ready(); err != nil {
		v.NotReady = err.Error()
	} else {
		v.Ready = true
	}
	count := map[string]int{}
	for _, sh := range st.Shares {
		v.Shares = append(v.Shares, clusterShare{Name: sh.Name, Owner: sh.Owner, Epoch: sh.Epoch, Since: sh.Since})
		count[sh.Owner]++
	}
	for _, r := range st.Replicas {
		v.Replicas = append(v.Replicas, clusterReplica{ID: r.ID, Address: r.Address, Started: r.Started, Renewed: r.Renewed,
			LeaseUntil: r.LeaseUntil, Live: r.Live(now), Self: r.ID == st.Replica, Shares: count[r.ID]})
	}
	v.Owned = append(v.Owned, st.Owned...)
	if tk := st.LastTakeover; tk.Share != "" {
		v.LastTakeover = &struct {
			Share string    `json:"share"`
			From  string    `json:"from"`
			Epoch int64     `json:"epoch"`
			At    time.Time `json:"at"`
		}{tk.Share, tk.From, tk.Epoch, tk.At}
	}
	return v
}

func (s *server) apiCluster(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.clusterView())
}

func (s *server) clusterPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "cluster", page{Title: "Cluster", Nav: "cluster", Data: s.clusterView()})
}
