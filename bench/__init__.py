"""The benchmark (`make bench`): data generator, timings, floor page, request-cost headers and
the load run. Installed only by partnerops.settings.bench; no product app imports it."""
