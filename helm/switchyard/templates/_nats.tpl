{{/*
NATS permissions per service: the same lists as services/chassis/src/bus/permissions.rs
(`for_service`), which is the source of truth. scripts/helm-check.sh renders ci/full-values.yaml
and compares `permissions.json` with ci/nats-permissions.json, which a unit test in that module
keeps equal to the Rust generator; change both together.
Result: JSON {"<service>": {"publish": [...], "subscribe": [...]}}.
*/}}
{{- define "switchyard.natsPermissions" -}}
{{- $p := .Values.prefix -}}
{{- $P := upper $p -}}
{{- $stream := dict "raw" (printf "%s_RAW" $P) "canonical" (printf "%s_CANONICAL" $P) "golden" (printf "%s_GOLDEN" $P) "ops" (printf "%s_OPS" $P) -}}
{{- $declare := list -}}
{{- range $k := list "RAW" "CANONICAL" "GOLDEN" "DLQ" "OPS" -}}
{{- $declare = append $declare (printf "$JS.API.STREAM.INFO.%s_%s" $P $k) -}}
{{- $declare = append $declare (printf "$JS.API.STREAM.CREATE.%s_%s" $P $k) -}}
{{- end -}}
{{- /* consume: what a durable pull consumer needs (look up / create, pull, ack). */ -}}
{{- $consume := dict -}}
{{- $pairs := list (list "transform" $stream.raw "transform") (list "dedupe" $stream.canonical "dedupe") (list "monitor" $stream.ops "monitor") -}}
{{- range $f := .Values.config.flows -}}
{{- $pairs = append $pairs (list "deliver" $stream.golden (printf "deliver-%s" $f.name)) -}}
{{- end -}}
{{- /* deliver's operator commands (resume a paused flow), after its flows as in for_service. */ -}}
{{- $pairs = append $pairs (list "deliver" $stream.ops "deliver-commands") -}}
{{- range $pair := $pairs -}}
{{- $svc := index $pair 0 -}}
{{- $s := index $pair 1 -}}
{{- $d := printf "%s-%s" $p (index $pair 2) -}}
{{- $l := default list (index $consume $svc) -}}
{{- $l = append $l (printf "$JS.API.CONSUMER.INFO.%s.%s" $s $d) -}}
{{- $l = append $l (printf "$JS.API.CONSUMER.CREATE.%s.%s" $s $d) -}}
{{- $l = append $l (printf "$JS.API.CONSUMER.CREATE.%s.%s.>" $s $d) -}}
{{- $l = append $l (printf "$JS.API.CONSUMER.MSG.NEXT.%s.%s" $s $d) -}}
{{- $l = append $l (printf "$JS.ACK.%s.%s.>" $s $d) -}}
{{- if and (eq $svc "deliver") (eq $s $stream.golden) -}}
{{- $flow := trimPrefix "deliver-" (index $pair 2) -}}
{{- $l = append $l (printf "%s.ops.delivery.%s" $p $flow) -}}
{{- $l = append $l (printf "%s.dlq.deliver.%s" $p $flow) -}}
{{- end -}}
{{- $_ := set $consume $svc $l -}}
{{- end -}}
{{- /* ingest's back-pressure and monitor's lag metrics read every later stage's consumer: transform, dedupe, each flow. */ -}}
{{- $stages := list (printf "$JS.API.CONSUMER.INFO.%s.%s-transform" $stream.raw $p) (printf "$JS.API.CONSUMER.INFO.%s.%s-dedupe" $stream.canonical $p) -}}
{{- range $f := .Values.config.flows -}}
{{- $stages = append $stages (printf "$JS.API.CONSUMER.INFO.%s.%s-deliver-%s" $stream.golden $p $f.name) -}}
{{- end -}}
{{- $ingest := prepend $stages (printf "%s.raw.>" $p) -}}
{{- $own := dict
  "ingest" $ingest
  "transform" (list (printf "%s.canonical.>" $p) (printf "%s.dlq.transform.>" $p) (printf "%s.ops.drift.>" $p))
  "dedupe" (list (printf "%s.golden.>" $p) (printf "%s.ops.conflict.>" $p) (printf "%s.dlq.dedupe.>" $p))
  "deliver" (list (printf "%s.ops.status.>" $p) (printf "%s.canonical.crosswalk.>" $p) (printf "%s.ops.conflict.*.destination" $p))
  "monitor" (list (printf "%s.dlq.monitor.>" $p) (printf "$JS.API.STREAM.MSG.GET.%s_DLQ" $P) (printf "%s.raw.>" $p) (printf "%s.canonical.>" $p) (printf "%s.golden.>" $p) (printf "%s.ops.>" $p)) -}}
{{- $_ := set $own "monitor" (concat (index $own "monitor") $stages) -}}
{{- $out := dict -}}
{{- range $svc := list "ingest" "transform" "dedupe" "deliver" "monitor" -}}
{{- $pub := concat $declare (default list (index $consume $svc)) (index $own $svc) -}}
{{- $sub := list (printf "_INBOX.%s.switchyard-%s.>" $p $svc) -}}
{{- $_ := set $out $svc (dict "publish" $pub "subscribe" $sub) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The nats-server `authorization` block: one user per service, passwords as $VAR references. */}}
{{- define "switchyard.natsAuthConf" -}}
{{- $perms := include "switchyard.natsPermissions" . | fromJson -}}
authorization {
  users = [
{{- range $svc := list "ingest" "transform" "dedupe" "deliver" "monitor" }}
{{- $p := index $perms $svc }}
    {
      user: {{ index $.Values.externalNats.auth.users $svc | quote }}
      password: ${{ index $.Values.natsAuth.passwordVars $svc }}
      permissions: {
        publish: { allow: [{{ range $i, $s := $p.publish }}{{ if $i }}, {{ end }}{{ $s | quote }}{{ end }}] }
        subscribe: { allow: [{{ range $i, $s := $p.subscribe }}{{ if $i }}, {{ end }}{{ $s | quote }}{{ end }}] }
      }
    }
{{- end }}
  ]
}
{{- end -}}
