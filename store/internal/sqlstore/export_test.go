package sqlstore

import "database/sql"

func nullInt(v any) (n sql.NullInt64) {
	if v != nil {
		n.Int64, n.Valid = v.(int64), true
	}
	return n
}
