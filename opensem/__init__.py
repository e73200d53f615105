"""opensem: Make for small expert models.

A TrainingManifest goes in; opensem plans a stage graph keyed by SHA256 lot numbers, runs only
the stale stages through doit, and publishes the adapter to an fsspec registry. Importing this
package never loads torch, transformers or peft.
"""

__version__ = "0.1.0"
