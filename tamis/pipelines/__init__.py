"""tamis.pipelines."""
