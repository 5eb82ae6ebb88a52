"""Tools around the services, run through ``make``: ``run`` (the three services in the
foreground), ``demo`` (a tour of traces), ``load`` (steady traffic), ``backends`` (reading
traces back from Jaeger and Zipkin) and ``new_service`` (the scaffolder).

They talk to the services over HTTP only and import none of them.
"""
