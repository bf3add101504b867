"""DEEM Studio's application services used by the dashboard pages: the background job manager and the
run store. The engine (:mod:`deem_core`) never imports this package."""
