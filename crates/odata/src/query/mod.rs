//! Query options ($filter, $select, $orderby, $top, $skip, $count). Being written.
