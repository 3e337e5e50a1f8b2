"""
The application layer: the Twisted service that wires the roles to sockets
and stores, the C{twistd sipevents} plugin's options, and the
C{sipevents-watch} command.
"""
