"""What edge and cloud must agree on: config, store, layout, manifest, preprocessing, MQTT."""
