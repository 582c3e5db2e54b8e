"""Reinforcement learning for the course: MAML on the 2D point navigation tasks of the MAML paper.

    point_navigation   the task family (section 5.3): goals, the step, vectorised rollouts
    policy             Gaussian MLP policy with a learned state-independent log standard deviation
    policy_gradient    discounted returns-to-go, the linear feature baseline, the REINFORCE surrogate
    maml_rl            the inner policy-gradient step, the meta-gradient (second and first order),
                       adaptation at meta-test
"""
