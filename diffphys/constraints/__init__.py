"""Conservation-enforcing modules (ProbConserv, hard projections, hard-constraint
mixture of experts) and `conservation_error` metrics.

Nothing lives here yet; the porous-medium / ProbConserv issue fills it.
"""
