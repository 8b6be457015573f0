-- Flows paused because their destination answered 410 Gone: while a row is here every change of
-- the flow is dead-lettered without calling the destination. Kept across restarts; removed by an
-- operator's resume (`switchyard admin flows resume <flow>`).
CREATE TABLE flow_pauses (
    flow      text PRIMARY KEY,
    reason    text NOT NULL,
    paused_at timestamptz NOT NULL DEFAULT now()
);
