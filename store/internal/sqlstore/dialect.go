package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Dialect is everything that differs between the databases; each driver
// package fills one in. The SQL in this package is written once, with ?
// placeholders and ON CONFLICT/RETURNING, which both databases understand.
type Dialect struct {
	// Name names the database in errors ("sqlite", "postgres").
	Name string
	// Serial is the column type of an auto-incrementing primary key. SQLite's
	// AUTOINCREMENT never reuses an ID, so IDs order rows like PostgreSQL's.
	Serial string
	// Blob is the column type of bytes: BLOB, BYTEA.
	Blob string
	// SkipLocked ends the subquery that picks outbox messages to claim, so
	// concurrent claimers on PostgreSQL skip each other's rows. SQLite has a
	// single writer, so its claims are serial anyway.
	SkipLocked string
	// ForShare ends the read of a share's fencing epoch inside a write, so
	// that a concurrent claim of the share waits for the write (and the
	// write for the claim). SQLite's single writer serialises them anyway.
	ForShare string
	// ForUpdate ends the read of a share that a claim may change.
	ForUpdate string
	// Dollar: placeholders are $1, $2 … instead of ?.
	Dollar bool
	// LockSchema serialises migrations between processes (run inside the
	// migration transaction); SQLite's immediate transactions already do.
	LockSchema string
	// LastInsertID: an INSERT of n rows in one statement gives them the n
	// IDs that end at its LastInsertId, in the order of VALUES (SQLite with
	// AUTOINCREMENT and one writer), so the pings' IDs need no RETURNING,
	// which materialises the rows once more.
	LastInsertID bool
	// Writers is how many ping committers run at once: 1 for a database
	// with a single writer.
	Writers int
	// Unavailable tells whether a driver error means the database cannot be
	// reached or cannot take writes now.
	Unavailable func(error) bool
	// UniqueViolation tells whether an error is a UNIQUE or PRIMARY KEY
	// violation.
	UniqueViolation func(error) bool
	// ForeignKeyViolation tells whether an error is a foreign key violation:
	// the row refers to one that does not exist.
	ForeignKeyViolation func(error) bool
}

// q rewrites a query written with ? placeholders for the dialect. Queries in
// this package never hold a ? inside a string literal.
func (d Dialect) q(query string) string {
	if !d.Dollar {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// CommonUnavailable covers what every driver can return when the database
// is out of reach: network errors, a broken connection, a timeout.
func CommonUnavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &ne):
		return true
	}
	return false
}
