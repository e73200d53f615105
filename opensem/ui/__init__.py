"""The browser interface (`opensem ui`): the manifest, the build graph and the releases made
visible, over the same project folder the CLI uses."""
