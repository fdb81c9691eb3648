"""The control plane, served by the master: the stats socket and its commands, the master
CLI, and the changes an operator makes to servers and frontends at run time."""
