"""What the edge and the cloud must agree on: config, store, layout, manifest, preprocessing, MQTT."""
