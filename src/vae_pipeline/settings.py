"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/stable/configure/configuration_basics/#configuration"""

from omegaconf.resolvers import oc

from vae_pipeline.cluster import ClusterHooks
from vae_pipeline.console import ConsoleHooks
from vae_pipeline.pipeline_registry import DEFAULT_PIPELINES
from vae_pipeline.tracking.hooks import RunNamingHooks, TrackingHooks
from vae_pipeline.tracking.summary import RunSummaryHooks

# Hooks run Last-In-First-Out: kedro-mlflow's, registered after these, run first.
HOOKS = (
    ConsoleHooks(),
    ClusterHooks(),
    RunSummaryHooks(),
    TrackingHooks(),
    RunNamingHooks(default_pipelines=DEFAULT_PIPELINES),
)

# Installed plugins for which to disable hook auto-registration.
# DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

# Class that manages the KedroSession.
# from kedro.framework.session import KedroSession
# SESSION_CLASS = KedroSession

# Class that manages storing KedroSession data.
# from kedro.framework.session.store import BaseSessionStore
# SESSION_STORE_CLASS = BaseSessionStore
# Keyword arguments to pass to the `SESSION_STORE_CLASS` constructor.
# SESSION_STORE_ARGS = {
#     "path": "./sessions"
# }

# Directory that holds configuration.
# CONF_SOURCE = "conf"

# Class that manages how configuration is loaded.
# from kedro.config import OmegaConfigLoader

# CONFIG_LOADER_CLASS = OmegaConfigLoader

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # MLFLOW_TRACKING_URI may override the tracking store (conf/base/mlflow.yml).
    "custom_resolvers": {"oc.env": oc.env},
    # An environment's parameters and globals (conf/local, conf/binarized_mnist)
    # override values of conf/base key by key; every other value stays the base's.
    "merge_strategy": {"parameters": "soft", "globals": "soft"},
    # "config_patterns": {
    #     "spark" : ["spark*/"],
    #     "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    # }
}

# Class that manages Kedro's library components.
# from kedro.framework.context import KedroContext
# CONTEXT_CLASS = KedroContext

# Class that manages the Data Catalog.
# from kedro.io import DataCatalog
# DATA_CATALOG_CLASS = DataCatalog
